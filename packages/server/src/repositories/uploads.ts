import type { Knex } from 'knex';

export interface UploadRow {
  id: string;
  user_id: string;
  name: string;
  parent_id: string;
  size: number;
  sha1: string;
  chunk_size: number;
  chunk_count: number;
  status: 'open' | 'completing' | 'complete' | 'failed';
  file_id: string | null;
  created_at: number;
  expires_at: number;
}

export interface ChunkRow {
  upload_id: string;
  idx: number;
  size: number;
  md5: string;
  created_at: number;
}

export class UploadsRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: UploadRow): Promise<void> {
    await this.db('uploads').insert(row);
  }

  async find(userId: string, id: string): Promise<UploadRow | undefined> {
    return this.db<UploadRow>('uploads').where({ user_id: userId, id }).first();
  }

  async findResumable(
    userId: string,
    sha1: string,
    size: number,
    now: number,
  ): Promise<UploadRow | undefined> {
    return this.db<UploadRow>('uploads')
      .where({ user_id: userId, sha1, size, status: 'open' })
      .andWhere('expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .first();
  }

  async countOpen(userId: string, now: number): Promise<number> {
    const row = await this.db('uploads')
      .where({ user_id: userId })
      .whereIn('status', ['open', 'completing'])
      .andWhere('expires_at', '>', now)
      .count({ n: '*' })
      .first();
    return Number(row?.n ?? 0);
  }

  /** Moves an upload between states only from the expected one: the guard against double completes. */
  async transition(
    id: string,
    from: UploadRow['status'],
    to: UploadRow['status'],
    patch: Partial<UploadRow> = {},
  ) {
    const n = await this.db('uploads')
      .where({ id, status: from })
      .update({ status: to, ...patch });
    return n === 1;
  }

  async reopenCompleting(): Promise<number> {
    return this.db('uploads').where({ status: 'completing' }).update({ status: 'open' });
  }

  async touch(id: string, expiresAt: number): Promise<void> {
    await this.db('uploads').where({ id }).update({ expires_at: expiresAt });
  }

  async delete(id: string): Promise<void> {
    await this.db('uploads').where({ id }).delete();
  }

  /** Deletes the upload unless a `complete` holds it; false when one does. */
  async deleteUnlessCompleting(id: string): Promise<boolean> {
    const n = await this.db('uploads').where({ id }).whereNot({ status: 'completing' }).delete();
    return n === 1 || (await this.db('uploads').where({ id }).first('id')) === undefined;
  }

  async recordChunk(row: ChunkRow): Promise<void> {
    await this.db('upload_chunks')
      .insert(row)
      .onConflict(['upload_id', 'idx'])
      .merge(['size', 'md5', 'created_at']);
  }

  async chunks(uploadId: string): Promise<ChunkRow[]> {
    return this.db<ChunkRow>('upload_chunks').where({ upload_id: uploadId }).orderBy('idx');
  }

  async listExpired(now: number, limit: number): Promise<UploadRow[]> {
    return this.db<UploadRow>('uploads')
      .where('expires_at', '<=', now)
      .whereNot('status', 'complete')
      .limit(limit);
  }

  /** Completed uploads are kept only so a repeated `complete` answers the same; not forever. */
  async deleteCompletedBefore(before: number): Promise<number> {
    return this.db('uploads').where({ status: 'complete' }).andWhere('expires_at', '<=', before).delete();
  }

  async allIds(): Promise<string[]> {
    return this.db('uploads').pluck('id');
  }
}
