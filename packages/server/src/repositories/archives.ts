import type { Knex } from 'knex';

export interface ArchiveRow {
  token_hash: string;
  user_id: string;
  name: string;
  /** JSON array of ids. */
  ids: string;
  expires_at: number;
  created_at: number;
}

export class ArchivesRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: ArchiveRow): Promise<void> {
    await this.db('archives').insert(row);
  }

  async findLive(tokenHash: string, now: number): Promise<ArchiveRow | undefined> {
    return this.db<ArchiveRow>('archives')
      .where('token_hash', tokenHash)
      .andWhere('expires_at', '>', now)
      .first();
  }

  async deleteExpired(now: number): Promise<number> {
    return this.db('archives').where('expires_at', '<=', now).delete();
  }
}
