import { type Static, Type } from '@sinclair/typebox';
import { Id, IsoDate } from './common.ts';

/** `GET /api/auth/oidc`: whether the sign-in page shows "Sign in with <name>". */
export const OidcInfo = Type.Object({
  enabled: Type.Boolean(),
  /** The provider's name for the button (DFS_OIDC_NAME); null when single sign-on is off. */
  name: Type.Union([Type.String(), Type.Null()]),
});
export type OidcInfo = Static<typeof OidcInfo>;

/** `POST /api/auth/oidc/start`: where to land in the app once signed in (a path of the app). */
export const OidcStartBody = Type.Object({
  returnTo: Type.Optional(Type.String({ maxLength: 1024, pattern: '^/(?![/\\\\])' })),
});
export type OidcStartBody = Static<typeof OidcStartBody>;

/** The provider's sign-in page, for the browser to go to. */
export const OidcStartResponse = Type.Object({ url: Type.String() });
export type OidcStartResponse = Static<typeof OidcStartResponse>;

/** An account's link to a person at the OpenID provider (or the LDAP directory). */
export const IdentityInfo = Type.Object({
  id: Id,
  provider: Type.Union([Type.Literal('oidc'), Type.Literal('ldap')]),
  issuer: Type.String(),
  /** The provider's stable id for the person (`sub`), never their name. */
  subject: Type.String(),
  createdAt: IsoDate,
  lastUsedAt: Type.Union([IsoDate, Type.Null()]),
});
export type IdentityInfo = Static<typeof IdentityInfo>;

export const IdentityList = Type.Object({ items: Type.Array(IdentityInfo) });
export type IdentityList = Static<typeof IdentityList>;

/** `POST /api/admin/users/:id/identities`: link the account to this subject at the configured provider. */
export const LinkIdentityBody = Type.Object({ subject: Type.String({ minLength: 1, maxLength: 255 }) });
export type LinkIdentityBody = Static<typeof LinkIdentityBody>;

export const IdentityResponse = Type.Object({ identity: IdentityInfo });
export type IdentityResponse = Static<typeof IdentityResponse>;
