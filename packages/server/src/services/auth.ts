import { MIN_PASSWORD_LENGTH, type User } from '@dfs/shared';
import { isUniqueViolation } from '../db/knex.ts';
import { HttpError } from '../errors.ts';
import type { Repositories } from '../repositories/index.ts';
import type { UserRow } from '../repositories/users.ts';
import { newId, newToken, sha256Hex } from './ids.ts';
import type { PasswordHasher } from './passwords.ts';

export interface AuthOptions {
  sessionTtlMs: number;
  passwords: PasswordHasher;
  now: () => number;
}

export interface Authenticated {
  user: User;
  sessionId: string;
}

export function toUser(row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    createdAt: new Date(Number(row.created_at)).toISOString(),
    isAdmin: Boolean(row.is_admin),
  };
}

/** Extends a session at most this often, so a busy client does not write on every request. */
const SLIDE_EVERY_MS = 60_000;

export class AuthService {
  constructor(
    private readonly repos: Repositories,
    private readonly options: AuthOptions,
  ) {}

  async signup(usernameInput: string, password: string): Promise<User> {
    const username = usernameInput.toLowerCase();
    if (password.length < MIN_PASSWORD_LENGTH) {
      throw new HttpError('weak_password', `password must be at least ${MIN_PASSWORD_LENGTH} characters`);
    }
    if (password.toLowerCase() === username) {
      throw new HttpError('weak_password', 'password must not be the username');
    }
    const passwordHash = await this.options.passwords.hash(password);
    try {
      return await this.repos.transaction(async (tx) => {
        // The first account administers the server; the check and the insert share a transaction.
        const row: UserRow = {
          id: newId(),
          username,
          password_hash: passwordHash,
          is_admin: !(await tx.users.any()),
          created_at: this.options.now(),
        };
        await tx.users.insert(row);
        return toUser(row);
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new HttpError('username_taken', `username "${username}" is taken`);
      throw error;
    }
  }

  async signin(usernameInput: string, password: string): Promise<{ user: User; token: string }> {
    const row = await this.repos.users.findByUsername(usernameInput.toLowerCase());
    if (!row) {
      await this.options.passwords.burn(password);
      throw new HttpError('invalid_credentials', 'wrong username or password');
    }
    if (!(await this.options.passwords.verify(row.password_hash, password))) {
      throw new HttpError('invalid_credentials', 'wrong username or password');
    }
    const token = newToken();
    const now = this.options.now();
    await this.repos.sessions.insert({
      id: newId(),
      token_hash: sha256Hex(token),
      user_id: row.id,
      created_at: now,
      last_seen_at: now,
      expires_at: now + this.options.sessionTtlMs,
    });
    return { user: toUser(row), token };
  }

  /** Resolves a bearer/cookie token; sessions slide forward while in use. */
  async authenticate(token: string): Promise<Authenticated | null> {
    const now = this.options.now();
    const session = await this.repos.sessions.findLiveByTokenHash(sha256Hex(token), now);
    if (!session) return null;
    const user = await this.repos.users.findById(session.user_id);
    if (!user) return null;
    if (now - Number(session.last_seen_at) >= SLIDE_EVERY_MS) {
      await this.repos.sessions.extend(session.id, now, now + this.options.sessionTtlMs);
    }
    return { user: toUser(user), sessionId: session.id };
  }

  async signout(sessionId: string): Promise<void> {
    await this.repos.sessions.delete(sessionId);
  }
}
