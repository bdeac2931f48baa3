import type { Knex } from 'knex';

export interface UserJobRow {
  id: string;
  user_id: string;
  kind: string;
  state: 'running' | 'done' | 'failed';
  done: number;
  total: number;
  /** JSON of what it did, once done. */
  result: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
}

/** Work a user started that outlives its request (a large restore), with its progress. */
export class UserJobsRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: UserJobRow): Promise<void> {
    await this.db('user_jobs').insert(row);
  }

  async find(userId: string, id: string): Promise<UserJobRow | undefined> {
    return this.db<UserJobRow>('user_jobs').where({ user_id: userId, id }).first();
  }

  async update(id: string, patch: Partial<UserJobRow>): Promise<void> {
    await this.db('user_jobs').where({ id }).update(patch);
  }
}
