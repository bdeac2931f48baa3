import type { Knex } from 'knex';

export interface ShareRow {
  token: string;
  user_id: string;
  file_id: string;
  password_hash: string | null;
  expires_at: number | null;
  max_downloads: number | null;
  downloads: number;
  revoked_at: number | null;
  created_at: number;
}

export type ShareRowWithFile = ShareRow & { name: string };

export class SharesRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: ShareRow): Promise<void> {
    await this.db('shares').insert(row);
  }

  private withName() {
    return this.db('shares')
      .join('user_files', 'user_files.id', 'shares.file_id')
      .select('shares.*', 'user_files.name as name');
  }

  async find(token: string): Promise<ShareRowWithFile | undefined> {
    return this.withName().where('shares.token', token).whereNull('shares.revoked_at').first();
  }

  async listByUser(userId: string): Promise<ShareRowWithFile[]> {
    return this.withName()
      .where('shares.user_id', userId)
      .whereNull('shares.revoked_at')
      .orderBy('shares.created_at', 'desc');
  }

  async revoke(userId: string, token: string, now: number): Promise<boolean> {
    const n = await this.db('shares')
      .where({ user_id: userId, token })
      .whereNull('revoked_at')
      .update({ revoked_at: now });
    return n === 1;
  }

  /**
   * Counts one download if the link still allows it. The condition and the increment are one
   * UPDATE, so two racing downloads of a one-use link cannot both win.
   */
  async claimDownload(token: string, now: number): Promise<boolean> {
    const n = await this.db('shares')
      .where({ token })
      .whereNull('revoked_at')
      .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now))
      .andWhere((q) => q.whereNull('max_downloads').orWhere('downloads', '<', this.db.ref('max_downloads')))
      .increment('downloads', 1);
    return n === 1;
  }
}
