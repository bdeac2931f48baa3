import type { Knex } from 'knex';

export interface NcUploadRow {
  id: string;
  user_id: string;
  /** The client's name for the upload: the last segment of its upload folder's URL. */
  transfer_id: string;
  /** The dfs upload session holding the bytes; null until the total length is known. */
  upload_id: string | null;
  total_length: number | null;
  /** The `Destination` given before the final MOVE (current clients give it at MKCOL). */
  destination: string | null;
  created_at: number;
}

export interface NcChunkRow {
  nc_upload_id: string;
  name: string;
  offset: number;
  size: number;
}

export class NcUploadsRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: NcUploadRow): Promise<void> {
    await this.db('nc_uploads').insert(row);
  }

  async find(userId: string, transferId: string): Promise<NcUploadRow | undefined> {
    return this.db<NcUploadRow>('nc_uploads').where({ user_id: userId, transfer_id: transferId }).first();
  }

  async update(id: string, change: Partial<Pick<NcUploadRow, 'upload_id' | 'total_length' | 'destination'>>) {
    await this.db('nc_uploads').where({ id }).update(change);
  }

  async delete(id: string): Promise<void> {
    await this.db('nc_upload_chunks').where({ nc_upload_id: id }).delete();
    await this.db('nc_uploads').where({ id }).delete();
  }

  async chunks(id: string): Promise<NcChunkRow[]> {
    return this.db<NcChunkRow>('nc_upload_chunks').where({ nc_upload_id: id }).orderBy('offset');
  }

  /** Records a chunk as received (a chunk sent again under its name replaces the record). */
  async putChunk(row: NcChunkRow): Promise<void> {
    await this.db('nc_upload_chunks')
      .insert(row)
      .onConflict(['nc_upload_id', 'name'])
      .merge(['offset', 'size']);
  }

  async deleteChunk(id: string, name: string): Promise<number> {
    return this.db('nc_upload_chunks').where({ nc_upload_id: id, name }).delete();
  }

  /** Sessions that never got their length (so never an upload) and were left this long. */
  async deleteStaleWithoutUpload(before: number): Promise<number> {
    const stale = this.db('nc_uploads').whereNull('upload_id').where('created_at', '<', before).select('id');
    await this.db('nc_upload_chunks').whereIn('nc_upload_id', stale).delete();
    return this.db('nc_uploads').whereNull('upload_id').where('created_at', '<', before).delete();
  }
}
