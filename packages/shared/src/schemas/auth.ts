import { type Static, Type } from '@sinclair/typebox';
import { Id, IsoDate } from './common.ts';

export const MIN_PASSWORD_LENGTH = 8;

export const User = Type.Object(
  { id: Id, username: Type.String(), createdAt: IsoDate, isAdmin: Type.Boolean() },
  { $id: 'User' },
);
export type User = Static<typeof User>;

export const Credentials = Type.Object({
  username: Type.String({ minLength: 3, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' }),
  password: Type.String({ minLength: MIN_PASSWORD_LENGTH, maxLength: 1024 }),
});
export type Credentials = Static<typeof Credentials>;

/** A new password: the same rules as at sign-up (the server also refuses the username). */
export const NewPassword = Type.String({ minLength: MIN_PASSWORD_LENGTH, maxLength: 1024 });

/**
 * `POST /api/auth/password`: a signed-in user changes their own password. The user's other
 * sessions end; the one that asked stays, and app passwords stay until revoked.
 */
export const ChangePasswordBody = Type.Object(
  { currentPassword: Type.String({ minLength: 1, maxLength: 1024 }), newPassword: NewPassword },
  { additionalProperties: false },
);
export type ChangePasswordBody = Static<typeof ChangePasswordBody>;

/** Sign-up takes an invite code too; the server needs one only in `DFS_SIGNUP=invite` mode. */
export const SignupBody = Type.Composite([
  Credentials,
  Type.Object({ inviteCode: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })) }),
]);
export type SignupBody = Static<typeof SignupBody>;

/**
 * What counts against a user's quota: the sizes of their files, live and trashed (trash counts
 * until purged), plus the declared sizes of their unfinished uploads. `quotaBytes` null: no quota.
 */
export const Usage = Type.Object({
  usedBytes: Type.Integer({ minimum: 0 }),
  quotaBytes: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
});
export type Usage = Static<typeof Usage>;

/** `usage` is sent by `GET /api/auth/me` only. */
export const UserResponse = Type.Object({ user: User, usage: Type.Optional(Usage) });
export type UserResponse = Static<typeof UserResponse>;

export const SigninResponse = Type.Object({ user: User, token: Type.String() });
export type SigninResponse = Static<typeof SigninResponse>;
