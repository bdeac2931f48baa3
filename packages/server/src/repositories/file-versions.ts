import type { Knex } from 'knex';

export interface FileVersionRow {
  id: string;
  user_id: string;
  file_id: string;
  content_id: string;
  size: number;
  mtime: number | null;
  created_at: number;
  replaced_at: number;
  /** The actor who made this content (JSON), when known. */
  made_by: string | null;
}

export type FileVersionWithSha1 = FileVersionRow & { sha1: string };

export class FileVersionsRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: FileVersionRow): Promise<void> {
    await this.db('file_versions').insert(row);
  }

  /** A file's versions, newest first, with their contents' SHA-1s. */
  async list(userId: string, fileId: string): Promise<FileVersionWithSha1[]> {
    return this.db('file_versions as v')
      .join('contents as c', 'c.id', 'v.content_id')
      .where({ 'v.user_id': userId, 'v.file_id': fileId })
      .orderBy([
        { column: 'v.replaced_at', order: 'desc' },
        { column: 'v.id', order: 'desc' },
      ])
      .select('v.*', 'c.sha1');
  }

  async find(userId: string, fileId: string, id: string): Promise<FileVersionWithSha1 | undefined> {
    return this.db('file_versions as v')
      .join('contents as c', 'c.id', 'v.content_id')
      .where({ 'v.user_id': userId, 'v.file_id': fileId, 'v.id': id })
      .first('v.*', 'c.sha1');
  }

  /** The newest version's replacement time: when the file's current content came. */
  async latestReplacedAt(fileId: string): Promise<number | undefined> {
    const row = await this.db('file_versions').where({ file_id: fileId }).max({ at: 'replaced_at' }).first();
    return row?.at == null ? undefined : Number(row.at);
  }

  async delete(id: string): Promise<void> {
    await this.db('file_versions').where({ id }).delete();
  }

  /** Drops the versions of files about to be deleted for good; answers the contents they held. */
  async deleteOfFiles(fileIds: string[]): Promise<string[]> {
    const contents = new Set<string>();
    for (let i = 0; i < fileIds.length; i += 500) {
      const batch = fileIds.slice(i, i + 500);
      for (const id of await this.db('file_versions')
        .whereIn('file_id', batch)
        .distinct()
        .pluck('content_id'))
        contents.add(id as string);
      await this.db('file_versions').whereIn('file_id', batch).delete();
    }
    return [...contents];
  }
}
