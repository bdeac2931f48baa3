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

export const UserResponse = Type.Object({ user: User });
export type UserResponse = Static<typeof UserResponse>;

export const SigninResponse = Type.Object({ user: User, token: Type.String() });
export type SigninResponse = Static<typeof SigninResponse>;
