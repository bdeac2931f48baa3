import type { Knex } from 'knex';

export interface DavLockRow {
  token: string;
  user_id: string;
  path: string;
  depth: '0' | 'infinity';
  scope: 'exclusive' | 'shared';
  owner: string;
  timeout_s: number;
  expires_at: number;
}

export class DavLocksRepository {
  constructor(private readonly db: Knex) {}

  /** The user's live locks (a user has few; the checks filter by path in code). */
  async live(userId: string, now: number): Promise<DavLockRow[]> {
    return this.db<DavLockRow>('dav_locks').where('user_id', userId).andWhere('expires_at', '>', now);
  }

  async insert(row: DavLockRow): Promise<void> {
    await this.db('dav_locks').insert(row);
  }

  async refresh(token: string, timeoutS: number, expiresAt: number): Promise<void> {
    await this.db('dav_locks').where({ token }).update({ timeout_s: timeoutS, expires_at: expiresAt });
  }

  async delete(token: string): Promise<void> {
    await this.db('dav_locks').where({ token }).delete();
  }

  /** Locks on `path` or below move with a MOVE (or go, when `to` is null). */
  async movePaths(userId: string, from: string, to: string | null, now: number): Promise<void> {
    for (const lock of await this.live(userId, now)) {
      if (lock.path !== from && !lock.path.startsWith(`${from}/`)) continue;
      if (to === null) await this.delete(lock.token);
      else
        await this.db('dav_locks')
          .where({ token: lock.token })
          .update({ path: to + lock.path.slice(from.length) });
    }
  }

  async deleteExpired(now: number): Promise<number> {
    return this.db('dav_locks').where('expires_at', '<=', now).delete();
  }
}
