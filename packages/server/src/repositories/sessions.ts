import type { Knex } from 'knex';
import type { UserRow } from './users.ts';

export interface SessionRow {
  id: string;
  token_hash: string;
  user_id: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
}

export class SessionsRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: SessionRow): Promise<void> {
    await this.db('sessions').insert(row);
  }

  /** A live session and its user in one read: every signed-in request starts with it. */
  async findLiveWithUser(
    tokenHash: string,
    now: number,
  ): Promise<{ session: Pick<SessionRow, 'id' | 'last_seen_at'>; user: UserRow } | undefined> {
    const row = (await this.db('sessions')
      .join('users', 'users.id', 'sessions.user_id')
      .where('sessions.token_hash', tokenHash)
      .andWhere('sessions.expires_at', '>', now)
      .select('users.*', 'sessions.id as session_id', 'sessions.last_seen_at as session_last_seen_at')
      .first()) as (UserRow & { session_id: string; session_last_seen_at: number }) | undefined;
    if (!row) return undefined;
    const { session_id, session_last_seen_at, ...user } = row;
    return { session: { id: session_id, last_seen_at: session_last_seen_at }, user };
  }

  async extend(id: string, lastSeenAt: number, expiresAt: number): Promise<void> {
    await this.db('sessions').where({ id }).update({ last_seen_at: lastSeenAt, expires_at: expiresAt });
  }

  async delete(id: string): Promise<void> {
    await this.db('sessions').where({ id }).delete();
  }

  /** Ends every session of a user, except `keepId` (the one that asked) when given. */
  async deleteByUser(userId: string, keepId?: string | null): Promise<number> {
    const query = this.db('sessions').where({ user_id: userId });
    if (keepId) query.whereNot({ id: keepId });
    return query.delete();
  }

  async deleteExpired(now: number): Promise<number> {
    return this.db('sessions').where('expires_at', '<=', now).delete();
  }
}
