import type { Knex } from 'knex';

export type LoginFlowState = 'pending' | 'approved' | 'denied';

export interface LoginFlowRow {
  id: string;
  poll_token_hash: string;
  flow_token_hash: string;
  client_name: string;
  state: LoginFlowState;
  created_at: number;
  expires_at: number;
  user_id: string | null;
  app_password_id: string | null;
  /** The approved app password's secret, until the poll that hands it over deletes the row. */
  app_password: string | null;
}

export class LoginFlowsRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: LoginFlowRow): Promise<void> {
    await this.db('login_flows').insert(row);
  }

  async findByFlowTokenHash(hash: string): Promise<LoginFlowRow | undefined> {
    return this.db<LoginFlowRow>('login_flows').where({ flow_token_hash: hash }).first();
  }

  async findByPollTokenHash(hash: string): Promise<LoginFlowRow | undefined> {
    return this.db<LoginFlowRow>('login_flows').where({ poll_token_hash: hash }).first();
  }

  /** Moves a pending, unexpired flow on; false when it was no longer pending (another answer won). */
  async decide(
    id: string,
    now: number,
    change: Pick<LoginFlowRow, 'state' | 'user_id' | 'app_password_id' | 'app_password'>,
  ): Promise<boolean> {
    const changed = await this.db('login_flows')
      .where({ id, state: 'pending' })
      .andWhere('expires_at', '>', now)
      .update(change);
    return changed === 1;
  }

  /** Deletes the row; true for the one caller that did (so a secret is handed over once). */
  async delete(id: string): Promise<boolean> {
    return (await this.db('login_flows').where({ id }).delete()) === 1;
  }

  async listExpired(now: number, limit: number): Promise<LoginFlowRow[]> {
    return this.db<LoginFlowRow>('login_flows').where('expires_at', '<=', now).limit(limit);
  }
}
