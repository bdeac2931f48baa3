import type { Knex } from 'knex';

export interface TusUploadRow {
  id: string;
  user_id: string;
  offset: number;
  tail_part: string | null;
  /** The client's `Upload-Metadata` header, echoed by HEAD. */
  metadata: string;
  file_id: string | null;
  created_at: number;
  /** The PATCH writing to the upload right now, and until when its lease holds. */
  patch_token?: string | null;
  patch_until?: number | null;
}

export class TusUploadsRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: TusUploadRow): Promise<void> {
    await this.db('tus_uploads').insert(row);
  }

  async find(userId: string, id: string): Promise<TusUploadRow | undefined> {
    return this.db<TusUploadRow>('tus_uploads').where({ user_id: userId, id }).first();
  }

  /**
   * Moves the acknowledged offset forward, only from `from` (another request that moved it
   * meanwhile wins; this one is then refused as a conflict). Answers whether it moved.
   */
  async advance(id: string, from: number, to: number, tailPart: string | null): Promise<boolean> {
    const n = await this.db('tus_uploads')
      .where({ id, offset: from })
      .update({ offset: to, tail_part: tailPart });
    return n === 1;
  }

  /**
   * Takes the upload's PATCH lease when no other PATCH holds a live one. Answers whether it was
   * taken; only the holder (`token`) renews or releases it.
   */
  async claimPatch(id: string, token: string, now: number, until: number): Promise<boolean> {
    const n = await this.db('tus_uploads')
      .where({ id })
      .andWhere((q) => q.whereNull('patch_until').orWhere('patch_until', '<', now))
      .update({ patch_token: token, patch_until: until });
    return n === 1;
  }

  async renewPatch(id: string, token: string, until: number): Promise<void> {
    await this.db('tus_uploads').where({ id, patch_token: token }).update({ patch_until: until });
  }

  async releasePatch(id: string, token: string): Promise<void> {
    await this.db('tus_uploads')
      .where({ id, patch_token: token })
      .update({ patch_token: null, patch_until: null });
  }

  async setFile(id: string, fileId: string): Promise<void> {
    await this.db('tus_uploads').where({ id }).update({ file_id: fileId });
  }
}
