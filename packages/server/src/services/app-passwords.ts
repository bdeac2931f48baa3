import { APP_PASSWORD_PREFIX, type AppPassword, type AppPasswordScope } from '@dfs/shared';
import { HttpError, notFound } from '../errors.ts';
import type { AppPasswordRow } from '../repositories/app-passwords.ts';
import type { Repositories } from '../repositories/index.ts';
import type { UserRow } from '../repositories/users.ts';
import { newId, newToken, sha256Hex } from './ids.ts';

/** Enough for every device and script a person has; more is a leak waiting to happen. */
const MAX_PER_USER = 100;
/** `last_used_at` is written at most this often per password (a sync client makes many requests). */
const TOUCH_EVERY_MS = 60_000;

function toAppPassword(row: AppPasswordRow): AppPassword {
  const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());
  return {
    id: row.id,
    name: row.name,
    scope: scopeOf(row),
    createdAt: iso(row.created_at)!,
    lastUsedAt: iso(row.last_used_at),
  };
}

/** Anything but an explicit `admin` is `files`: a row the code does not understand gets the least. */
const scopeOf = (row: AppPasswordRow): AppPasswordScope => (row.scope === 'admin' ? 'admin' : 'files');

/**
 * Secrets for programs: 32 random bytes behind a recognisable prefix, shown once, stored as a
 * SHA-256 (a random secret needs no slow hash; a guess is as hard as the secret itself).
 */
export class AppPasswordService {
  constructor(
    private readonly repos: Repositories,
    private readonly now: () => number,
  ) {}

  /** `files` unless asked otherwise (the Nextcloud Login Flow never asks); `admin` for administrators only. */
  async create(
    userId: string,
    name: string,
    scope: AppPasswordScope = 'files',
  ): Promise<{ appPassword: AppPassword; secret: string }> {
    if (scope === 'admin' && !(await this.repos.users.findById(userId))?.is_admin) {
      throw new HttpError('forbidden', 'only administrators can create app passwords with the admin scope');
    }
    if ((await this.repos.appPasswords.countByUser(userId)) >= MAX_PER_USER) {
      throw new HttpError('bad_request', `at most ${MAX_PER_USER} app passwords; revoke some first`);
    }
    const secret = `${APP_PASSWORD_PREFIX}${newToken(32)}`;
    const row: AppPasswordRow = {
      id: newId(),
      user_id: userId,
      name: name.trim() || 'app',
      token_hash: sha256Hex(secret),
      created_at: this.now(),
      last_used_at: null,
      scope,
    };
    await this.repos.appPasswords.insert(row);
    return { appPassword: toAppPassword(row), secret };
  }

  async list(userId: string): Promise<AppPassword[]> {
    return (await this.repos.appPasswords.listByUser(userId)).map(toAppPassword);
  }

  async revoke(userId: string, id: string): Promise<void> {
    if (!(await this.repos.appPasswords.delete(userId, id))) throw notFound('app password not found');
  }

  /** The user an app password belongs to (and its id and scope), or null for anything else. */
  async authenticate(secret: string): Promise<{
    user: UserRow;
    appPasswordId: string;
    appPasswordName: string;
    appPasswordScope: AppPasswordScope;
  } | null> {
    if (!secret.startsWith(APP_PASSWORD_PREFIX)) return null;
    const row = await this.repos.appPasswords.findByTokenHash(sha256Hex(secret));
    if (!row) return null;
    const user = await this.repos.users.findById(row.user_id);
    if (!user) return null;
    const now = this.now();
    if (row.last_used_at === null || now - Number(row.last_used_at) >= TOUCH_EVERY_MS) {
      await this.repos.appPasswords.touch(row.id, now);
    }
    return { user, appPasswordId: row.id, appPasswordName: row.name, appPasswordScope: scopeOf(row) };
  }
}
