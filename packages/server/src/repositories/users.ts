import type { Knex } from 'knex';

export interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  is_admin: boolean | number;
  created_at: number;
}

export class UsersRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: UserRow): Promise<void> {
    await this.db('users').insert(row);
  }

  async findByUsername(username: string): Promise<UserRow | undefined> {
    return this.db<UserRow>('users').where({ username }).first();
  }

  async findById(id: string): Promise<UserRow | undefined> {
    return this.db<UserRow>('users').where({ id }).first();
  }

  async any(): Promise<boolean> {
    return (await this.db('users').first('id')) !== undefined;
  }
}
