import type { Knex } from 'knex';
import type { UserRow } from './users.ts';

export interface SessionRow {
  id: string;
  token_hash: string;
  user_id: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  /** When this session last proved the second factor (sign-in with a code, or turning TOTP on). */
  second_factor_at?: number | null;
}

/** What a request needs of its session, and of the user's two-factor sign-in, in one read. */
export interface LiveSession {
  id: string;
  last_seen_at: number;
  second_factor_at: number | null;
  /** When the user turned TOTP on; null while it is off. */
  totp_enabled_at: number | null;
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
  ): Promise<{ session: LiveSession; user: UserRow } | undefined> {
    const row = (await this.db('sessions')
      .join('users', 'users.id', 'sessions.user_id')
      .leftJoin('user_totp', 'user_totp.user_id', 'sessions.user_id')
      .where('sessions.token_hash', tokenHash)
      .andWhere('sessions.expires_at', '>', now)
      .select(
        'users.*',
        'sessions.id as session_id',
        'sessions.last_seen_at as session_last_seen_at',
        'sessions.second_factor_at as session_second_factor_at',
        'user_totp.enabled_at as session_totp_enabled_at',
      )
      .first()) as
      | (UserRow & {
          session_id: string;
          session_last_seen_at: number;
          session_second_factor_at: number | null;
          session_totp_enabled_at: number | null;
        })
      | undefined;
    if (!row) return undefined;
    const { session_id, session_last_seen_at, session_second_factor_at, session_totp_enabled_at, ...user } =
      row;
    const num = (v: number | null) => (v === null ? null : Number(v));
    return {
      session: {
        id: session_id,
        last_seen_at: session_last_seen_at,
        second_factor_at: num(session_second_factor_at),
        totp_enabled_at: num(session_totp_enabled_at),
      },
      user,
    };
  }

  async markSecondFactor(id: string, at: number): Promise<void> {
    await this.db('sessions').where({ id }).update({ second_factor_at: at });
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
