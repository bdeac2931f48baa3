import type { Knex } from 'knex';

export interface InviteRow {
  id: string;
  code_hash: string;
  created_by: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  used_by: string | null;
}

/** Single-use sign-up codes, kept by hash only. */
export class InvitesRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: InviteRow): Promise<void> {
    await this.db('invites').insert(row);
  }

  /** Marks the code used by `userId` if it is unused and unexpired; false otherwise. */
  async consume(codeHash: string, userId: string, now: number): Promise<boolean> {
    const n = await this.db('invites')
      .where({ code_hash: codeHash })
      .whereNull('used_at')
      .andWhere('expires_at', '>', now)
      .update({ used_at: now, used_by: userId });
    return n === 1;
  }

  async list(limit: number, offset: number): Promise<{ items: InviteRow[]; total: number }> {
    const [items, count] = await Promise.all([
      this.db<InviteRow>('invites')
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .offset(offset),
      this.db('invites').count({ n: '*' }).first(),
    ]);
    return { items, total: Number(count?.n ?? 0) };
  }

  async delete(id: string): Promise<boolean> {
    return (await this.db('invites').where({ id }).delete()) === 1;
  }
}
