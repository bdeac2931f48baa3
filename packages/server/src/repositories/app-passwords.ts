import type { Knex } from 'knex';

export interface AppPasswordRow {
  id: string;
  user_id: string;
  name: string;
  token_hash: string;
  created_at: number;
  last_used_at: number | null;
  /** `files` or `admin` (see AppPasswordScope); rows from before scopes are `files`. */
  scope: string;
}

export class AppPasswordsRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: AppPasswordRow): Promise<void> {
    await this.db('app_passwords').insert(row);
  }

  async findByTokenHash(tokenHash: string): Promise<AppPasswordRow | undefined> {
    return this.db<AppPasswordRow>('app_passwords').where({ token_hash: tokenHash }).first();
  }

  async listByUser(userId: string): Promise<AppPasswordRow[]> {
    return this.db<AppPasswordRow>('app_passwords').where({ user_id: userId }).orderBy('created_at', 'desc');
  }

  async countByUser(userId: string): Promise<number> {
    const row = await this.db('app_passwords').where({ user_id: userId }).count({ n: '*' }).first();
    return Number(row?.n ?? 0);
  }

  async delete(userId: string, id: string): Promise<boolean> {
    return (await this.db('app_passwords').where({ user_id: userId, id }).delete()) === 1;
  }

  async touch(id: string, now: number): Promise<void> {
    await this.db('app_passwords').where({ id }).update({ last_used_at: now });
  }
}
