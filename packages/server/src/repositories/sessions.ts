import type { Knex } from 'knex';

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

  async findLiveByTokenHash(tokenHash: string, now: number): Promise<SessionRow | undefined> {
    return this.db<SessionRow>('sessions')
      .where({ token_hash: tokenHash })
      .andWhere('expires_at', '>', now)
      .first();
  }

  async extend(id: string, lastSeenAt: number, expiresAt: number): Promise<void> {
    await this.db('sessions').where({ id }).update({ last_seen_at: lastSeenAt, expires_at: expiresAt });
  }

  async delete(id: string): Promise<void> {
    await this.db('sessions').where({ id }).delete();
  }

  async deleteExpired(now: number): Promise<number> {
    return this.db('sessions').where('expires_at', '<=', now).delete();
  }
}
