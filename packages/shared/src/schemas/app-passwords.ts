import { type Static, Type } from '@sinclair/typebox';
import { Id, IsoDate, WELL_FORMED_TEXT } from './common.ts';

/**
 * App passwords: secrets for programs (WebDAV clients, tus uploaders, scripts) that never see the
 * account password. Usable as a Bearer token, and as the password of HTTP Basic on /dav/.
 */
/**
 * What an app password may do: `files` (the default) is everything a user does with their own
 * files and shares, never administration; `admin` also carries its owner's admin role, and only
 * an administrator may create one.
 */
export const AppPasswordScope = Type.Union([Type.Literal('files'), Type.Literal('admin')]);
export type AppPasswordScope = Static<typeof AppPasswordScope>;

export const CreateAppPasswordBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100, pattern: WELL_FORMED_TEXT }),
    scope: Type.Optional(AppPasswordScope),
  },
  { additionalProperties: false },
);
export type CreateAppPasswordBody = Static<typeof CreateAppPasswordBody>;

export const AppPassword = Type.Object(
  {
    id: Id,
    name: Type.String(),
    scope: AppPasswordScope,
    createdAt: IsoDate,
    /** Last time a request authenticated with it (to the minute); null: never used. */
    lastUsedAt: Type.Union([IsoDate, Type.Null()]),
  },
  { $id: 'AppPassword' },
);
export type AppPassword = Static<typeof AppPassword>;

/** The secret is in this answer only: the server keeps its hash. */
export const CreatedAppPassword = Type.Object({ appPassword: AppPassword, secret: Type.String() });
export type CreatedAppPassword = Static<typeof CreatedAppPassword>;

export const AppPasswordList = Type.Object({ items: Type.Array(AppPassword) });
export type AppPasswordList = Static<typeof AppPasswordList>;

/** Every app password starts with this, so a server (and a secret scanner) can tell one. */
export const APP_PASSWORD_PREFIX = 'dfsapp_';
