import { type Static, Type } from '@sinclair/typebox';
import { Credentials, NewPassword, Usage, User } from './auth.ts';
import { Id, IsoDate } from './common.ts';
import { MAX_PAGE_SIZE } from './files.ts';

/** Admin listings page like file listings: `limit` 1–1000, 200 when absent. */
export const AdminListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE })),
  offset: Type.Optional(Type.Integer({ minimum: 0 })),
});
export type AdminListQuery = Static<typeof AdminListQuery>;

/** `POST /api/admin/users`: works whatever `DFS_SIGNUP` says. */
export const AdminCreateUserBody = Type.Composite([
  Credentials,
  Type.Object({ isAdmin: Type.Optional(Type.Boolean()) }),
]);
export type AdminCreateUserBody = Static<typeof AdminCreateUserBody>;

/**
 * `PATCH /api/admin/users/:id`. `quotaBytes`: null follows `DFS_DEFAULT_QUOTA_BYTES`, 0 means no
 * quota for this user, any other number is the user's own quota in bytes.
 */
export const AdminPatchUserBody = Type.Object(
  {
    // One type list, not a union: the server coerces types, and under coercion a union's first
    // branch would turn null into 0 (or 0 into null).
    quotaBytes: Type.Unsafe<number | null>({ type: ['integer', 'null'], minimum: 0 }),
  },
  { additionalProperties: false },
);
export type AdminPatchUserBody = Static<typeof AdminPatchUserBody>;

/**
 * `POST /api/admin/users/:id/password`: an administrator sets a user's password (the user forgot
 * it). Every session of that user ends; app passwords stay until revoked.
 */
export const AdminResetPasswordBody = Type.Object(
  { newPassword: NewPassword },
  { additionalProperties: false },
);
export type AdminResetPasswordBody = Static<typeof AdminResetPasswordBody>;

export const AdminUser = Type.Composite([
  User,
  Type.Object({
    /** The per-user override as set (null: the server default applies). */
    quotaOverride: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
    usage: Usage,
    /** Entries (files and folders, live and trashed). */
    entries: Type.Integer({ minimum: 0 }),
    /** When an administrator turned the account off (it signs in nowhere); null: it is on. */
    disabledAt: Type.Union([IsoDate, Type.Null()]),
    /** The account signs in with its LDAP directory password. */
    directory: Type.Boolean(),
  }),
]);
export type AdminUser = Static<typeof AdminUser>;

export const AdminUserResponse = Type.Object({ user: AdminUser });
export type AdminUserResponse = Static<typeof AdminUserResponse>;

export const AdminUserList = Type.Object({ items: Type.Array(AdminUser), total: Type.Integer() });
export type AdminUserList = Static<typeof AdminUserList>;

export const CreateInviteBody = Type.Object({
  /** Hours until the code stops working; 168 (a week) when absent. */
  expiresInHours: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 8760 })),
});
export type CreateInviteBody = Static<typeof CreateInviteBody>;

/** An invite as listed: the code itself is shown once, when it is created (only its hash is kept). */
export const Invite = Type.Object({
  id: Id,
  createdAt: IsoDate,
  expiresAt: IsoDate,
  usedAt: Type.Union([IsoDate, Type.Null()]),
});
export type Invite = Static<typeof Invite>;

export const CreateInviteResponse = Type.Object({
  invite: Type.Composite([Invite, Type.Object({ code: Type.String() })]),
});
export type CreateInviteResponse = Static<typeof CreateInviteResponse>;

export const InviteList = Type.Object({ items: Type.Array(Invite), total: Type.Integer() });
export type InviteList = Static<typeof InviteList>;
