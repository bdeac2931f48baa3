import type { Knex } from 'knex';

export interface ChallengeRow {
  id: string;
  user_id: string;
  content_id: string;
  nonce: string;
  offset: number;
  length: number;
  expires_at: number;
  used_at: number | null;
}

export class ChallengesRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: ChallengeRow): Promise<void> {
    await this.db('challenges').insert(row);
  }

  async find(userId: string, id: string): Promise<ChallengeRow | undefined> {
    return this.db<ChallengeRow>('challenges').where({ user_id: userId, id }).first();
  }

  /** Single use: only the first caller flips `used_at`; a replay gets false. */
  async consume(id: string, now: number): Promise<boolean> {
    const n = await this.db('challenges')
      .where({ id })
      .whereNull('used_at')
      .andWhere('expires_at', '>', now)
      .update({ used_at: now });
    return n === 1;
  }

  async deleteExpired(now: number): Promise<number> {
    return this.db('challenges').where('expires_at', '<=', now).delete();
  }
}
