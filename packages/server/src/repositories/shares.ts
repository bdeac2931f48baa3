import type { Knex } from 'knex';

export interface ShareRow {
  token: string;
  /** `download`: serves a file; `upload`: an upload request, taking files into a folder. */
  kind: 'download' | 'upload';
  user_id: string;
  file_id: string;
  password_hash: string | null;
  expires_at: number | null;
  max_downloads: number | null;
  downloads: number;
  bytes_served: number;
  revoked_at: number | null;
  created_at: number;
  max_bytes: number | null;
  bytes_received: number;
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

  /** A link's row even when it was revoked: to tell a visitor why the link is dead. */
  async findIncludingRevoked(token: string): Promise<ShareRow | undefined> {
    return this.db('shares').where('token', token).first();
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
   * Reserves `length` bytes of the link's budget before they are sent, and counts the copies the
   * link's served bytes then amount to. Compare-and-set on `bytes_served`: two racing requests
   * cannot both take the last copy. Returns false when the link is gone or its copies are spent.
   */
  async reserveBytes(
    token: string,
    now: number,
    next: (row: ShareRow) => ShareCharge | null,
  ): Promise<boolean> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const row = (await this.db('shares')
        .where({ token })
        .whereNull('revoked_at')
        .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now))
        .first()) as ShareRow | undefined;
      if (!row) return false;
      const charge = next(row);
      if (!charge) return false;
      const n = await this.db('shares')
        .where({ token, bytes_served: row.bytes_served, downloads: row.downloads })
        .update({ bytes_served: charge.bytesServed, downloads: charge.downloads });
      if (n === 1) return true;
    }
    throw new Error('share download accounting kept conflicting');
  }

  /**
   * Counts `bytes` taken in by an upload request, only while the link is live and if they fit
   * its limit: one conditional update, so two racing uploads cannot both take the last bytes.
   */
  async receiveBytes(token: string, bytes: number, now: number, room = bytes): Promise<boolean> {
    // `room`: what must still fit beside what was received (the bytes, plus what the link's
    // open sessions hold); `bytes` alone is counted.
    const n = await this.db('shares')
      .where({ token, kind: 'upload' })
      .whereNull('revoked_at')
      .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now))
      .andWhere((q) =>
        q.whereNull('max_bytes').orWhere('max_bytes', '>=', this.db.raw('bytes_received + ?', [room])),
      )
      .update({ bytes_received: this.db.raw('bytes_received + ?', [bytes]) });
    return n === 1;
  }

  /** Gives back what receiveBytes counted for a file that was then not added. */
  async unreceiveBytes(token: string, bytes: number): Promise<void> {
    await this.db('shares')
      .where({ token })
      .update({
        bytes_received: this.db.raw('CASE WHEN bytes_received > ? THEN bytes_received - ? ELSE 0 END', [
          bytes,
          bytes,
        ]),
      });
  }

  /** Gives back bytes a cut-off transfer reserved but did not send; copies already counted stay. */
  async releaseBytes(token: string, bytes: number): Promise<void> {
    if (bytes <= 0) return;
    await this.db('shares')
      .where({ token })
      .update({
        bytes_served: this.db.raw('CASE WHEN bytes_served > ? THEN bytes_served - ? ELSE 0 END', [
          bytes,
          bytes,
        ]),
      });
  }
}

export interface ShareCharge {
  bytesServed: number;
  downloads: number;
}
