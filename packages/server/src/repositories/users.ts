import type { Knex } from 'knex';

export interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  is_admin: boolean | number;
  created_at: number;
  /** Overrides DFS_DEFAULT_QUOTA_BYTES; NULL: the default applies (0: no quota). */
  quota_bytes?: number | null;
  /** When the user last changed anything (read-your-writes with a read replica); NULL: never. */
  wrote_at?: number | null;
  /** When an administrator turned the account off; NULL: it is on. */
  disabled_at?: number | null;
  /** The sizes of all the user's entries, live and trashed (what the quota counts of them). */
  used_bytes?: number;
  /** How many entries the user has, live and trashed. */
  entry_count?: number;
}

/** What a user holds: bytes (files incl. trash, plus unfinished uploads' declared sizes) and entries. */
export interface UsageRow {
  bytes: number;
  entries: number;
  /** Unfinished uploads, each of which will become an entry. */
  pendingEntries: number;
}

/** Uploads whose declared size is reserved: not finished, not expired. */
const PENDING = ['open', 'completing'];

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

  async markWrite(id: string, at: number): Promise<void> {
    await this.db('users').where({ id }).update({ wrote_at: at });
  }

  /**
   * The user's row, write-locked until the transaction ends on MySQL (SQLite has one writer
   * anyway): the quota check and the insert it allows cannot interleave with another's.
   */
  async findForUpdate(id: string): Promise<UserRow | undefined> {
    const query = this.db<UserRow>('users').where({ id }).first();
    return this.db.client.config.client === 'mysql2' ? query.forUpdate() : query;
  }

  async any(): Promise<boolean> {
    return (await this.db('users').first('id')) !== undefined;
  }

  async list(limit: number, offset: number): Promise<{ items: UserRow[]; total: number }> {
    const [items, count] = await Promise.all([
      this.db<UserRow>('users').orderBy('created_at', 'asc').orderBy('id', 'asc').limit(limit).offset(offset),
      this.db('users').count({ n: '*' }).first(),
    ]);
    return { items, total: Number(count?.n ?? 0) };
  }

  async setPasswordHash(id: string, passwordHash: string): Promise<boolean> {
    return (await this.db('users').where({ id }).update({ password_hash: passwordHash })) === 1;
  }

  /** `at` turns the account off (from then), null turns it back on. */
  async setDisabled(id: string, at: number | null): Promise<boolean> {
    return (await this.db('users').where({ id }).update({ disabled_at: at })) === 1;
  }

  async setQuota(id: string, quotaBytes: number | null): Promise<boolean> {
    return (await this.db('users').where({ id }).update({ quota_bytes: quotaBytes })) === 1;
  }

  /**
   * Usage of each of `userIds`: their entries' counters (kept on their rows by the file
   * repository) and the reservations of their unfinished uploads (an index range of those alone;
   * they expire with time, which no counter follows). Two reads, whatever the number of users.
   */
  async usage(userIds: string[], now: number): Promise<Map<string, UsageRow>> {
    const out = new Map<string, UsageRow>(
      userIds.map((id) => [id, { bytes: 0, entries: 0, pendingEntries: 0 }]),
    );
    if (userIds.length === 0) return out;
    const [users, uploads] = await Promise.all([
      this.db('users').whereIn('id', userIds).select('id', 'used_bytes', 'entry_count'),
      this.db('uploads')
        .whereIn('user_id', userIds)
        .whereIn('status', PENDING)
        .andWhere('expires_at', '>', now)
        .groupBy('user_id')
        .select('user_id', this.db.raw('COALESCE(SUM(size), 0) as bytes'), this.db.raw('COUNT(*) as n')),
    ]);
    for (const row of users as Array<{ id: string; used_bytes: unknown; entry_count: unknown }>) {
      const usage = out.get(row.id);
      if (!usage) continue;
      usage.bytes += Number(row.used_bytes);
      usage.entries = Number(row.entry_count);
    }
    for (const row of uploads as Array<{ user_id: string; bytes: unknown; n: unknown }>) {
      const usage = out.get(row.user_id);
      if (!usage) continue;
      usage.bytes += Number(row.bytes);
      usage.pendingEntries = Number(row.n);
    }
    return out;
  }
}
