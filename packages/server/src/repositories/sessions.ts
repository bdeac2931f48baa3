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
  /** The User-Agent it signed in or was last seen with, cut to fit; null when none was sent. */
  user_agent?: string | null;
  /** The client address as Fastify sees it (DFS_TRUST_PROXY decides whether a proxy's word counts). */
  address?: string | null;
}

/** Who is on the other end of a session, as a request shows it. */
export interface SessionClient {
  userAgent: string | null;
  address: string | null;
}

/** What fits the columns: a User-Agent can be kilobytes, and an address is at most an IPv6 one with a zone. */
export function clientColumns(client: SessionClient): { user_agent: string | null; address: string | null } {
  return {
    user_agent: client.userAgent === null ? null : client.userAgent.slice(0, 255),
    // An IPv4 client of a dual-stack socket shows as `::ffff:a.b.c.d`; people know it as `a.b.c.d`.
    address: client.address === null ? null : client.address.replace(/^::ffff:(?=\d+\.)/i, '').slice(0, 64),
  };
}

/** What a request needs of its session, and of the user's two-factor sign-in, in one read. */
export interface LiveSession {
  id: string;
  last_seen_at: number;
  second_factor_at: number | null;
  /** When the user turned TOTP on; null while it is off. */
  totp_enabled_at: number | null;
  /** When the user's oldest passkey was registered; null when they have none. */
  passkey_since: number | null;
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
        this.db.raw(
          '(select min(passkeys.created_at) from passkeys where passkeys.user_id = sessions.user_id) as session_passkey_since',
        ),
      )
      .first()) as
      | (UserRow & {
          session_id: string;
          session_last_seen_at: number;
          session_second_factor_at: number | null;
          session_totp_enabled_at: number | null;
          session_passkey_since: number | null;
        })
      | undefined;
    if (!row) return undefined;
    const {
      session_id,
      session_last_seen_at,
      session_second_factor_at,
      session_totp_enabled_at,
      session_passkey_since,
      ...user
    } = row;
    const num = (v: number | null) => (v === null ? null : Number(v));
    return {
      session: {
        id: session_id,
        last_seen_at: session_last_seen_at,
        second_factor_at: num(session_second_factor_at),
        totp_enabled_at: num(session_totp_enabled_at),
        passkey_since: num(session_passkey_since),
      },
      user,
    };
  }

  async markSecondFactor(id: string, at: number): Promise<void> {
    await this.db('sessions').where({ id }).update({ second_factor_at: at });
  }

  /**
   * Slides a session forward; the client it was seen with rides along in the same write, so the
   * sessions list stays current without a write per request.
   */
  async extend(id: string, lastSeenAt: number, expiresAt: number, client?: SessionClient): Promise<void> {
    await this.db('sessions')
      .where({ id })
      .update({ last_seen_at: lastSeenAt, expires_at: expiresAt, ...(client ? clientColumns(client) : {}) });
  }

  /** A user's live sessions, newest first. */
  async listLiveByUser(userId: string, now: number): Promise<SessionRow[]> {
    return this.db<SessionRow>('sessions')
      .where({ user_id: userId })
      .andWhere('expires_at', '>', now)
      .orderBy([
        { column: 'created_at', order: 'desc' },
        { column: 'id', order: 'desc' },
      ]);
  }

  /** Ends one session of a user; false when the user has no such session (someone else's is no different). */
  async deleteOfUser(userId: string, id: string): Promise<boolean> {
    return (await this.db('sessions').where({ user_id: userId, id }).delete()) === 1;
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
