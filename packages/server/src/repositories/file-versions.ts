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

/** A version as the list shows it: `free` when a file (any user's, live or trashed) has its content. */
export type ListedFileVersion = FileVersionWithSha1 & { free: boolean };

/** What retention needs of a version to judge it. */
export interface RetainedVersion {
  id: string;
  user_id: string;
  file_id: string;
  content_id: string;
  size: number;
  replaced_at: number;
}

export class FileVersionsRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: FileVersionRow): Promise<void> {
    await this.db('file_versions').insert(row);
  }

  async insertMany(rows: FileVersionRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += 200) await this.db('file_versions').insert(rows.slice(i, i + 200));
  }

  /** Each file's newest replacement time (files without versions are left out). */
  async latestReplacedAtMany(fileIds: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (let i = 0; i < fileIds.length; i += 500) {
      const rows: Array<{ file_id: string; at: number | string }> = await this.db('file_versions')
        .whereIn('file_id', fileIds.slice(i, i + 500))
        .groupBy('file_id')
        .select('file_id')
        .max({ at: 'replaced_at' });
      for (const r of rows) out.set(r.file_id, Number(r.at));
    }
    return out;
  }

  /** The versions of these files (id, file, content, mtime, replaced_at), newest first. */
  async ofFiles(
    fileIds: string[],
  ): Promise<Array<Pick<FileVersionRow, 'id' | 'file_id' | 'content_id' | 'mtime' | 'replaced_at'>>> {
    const out: Array<Pick<FileVersionRow, 'id' | 'file_id' | 'content_id' | 'mtime' | 'replaced_at'>> = [];
    for (let i = 0; i < fileIds.length; i += 500)
      out.push(
        ...(await this.db('file_versions')
          .whereIn('file_id', fileIds.slice(i, i + 500))
          .orderBy('replaced_at', 'desc')
          .select('id', 'file_id', 'content_id', 'mtime', 'replaced_at')),
      );
    return out;
  }

  async deleteMany(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 500)
      await this.db('file_versions')
        .whereIn('id', ids.slice(i, i + 500))
        .delete();
  }

  /** A file's versions, newest first, with their contents' SHA-1s and whether a file holds each. */
  async list(userId: string, fileId: string): Promise<ListedFileVersion[]> {
    const rows: Array<FileVersionWithSha1 & { free: unknown }> = await this.db('file_versions as v')
      .join('contents as c', 'c.id', 'v.content_id')
      .where({ 'v.user_id': userId, 'v.file_id': fileId })
      .orderBy([
        { column: 'v.replaced_at', order: 'desc' },
        { column: 'v.id', order: 'desc' },
      ])
      .select(
        'v.*',
        'c.sha1',
        this.db.raw('CASE WHEN EXISTS ? THEN 1 ELSE 0 END AS free', [heldByAFile(this.db)]),
      );
    return rows.map((row) => ({ ...row, free: Number(row.free) === 1 }));
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

  /**
   * Files after `after` (in id order) with at least two versions replaced before `before`: the
   * only ones thinning can take anything from (younger versions are all kept).
   */
  async filesToThin(before: number, after: string, limit: number): Promise<string[]> {
    const rows: Array<{ file_id: string }> = await this.db('file_versions')
      .where('replaced_at', '<', before)
      .andWhere('file_id', '>', after)
      .groupBy('file_id')
      .havingRaw('COUNT(*) > 1')
      .orderBy('file_id')
      .limit(limit)
      .select('file_id');
    return rows.map((row) => row.file_id);
  }

  /** The given files' versions replaced before `before`, newest first within each file. */
  async olderThan(fileIds: string[], before: number): Promise<RetainedVersion[]> {
    if (fileIds.length === 0) return [];
    const rows: RetainedVersion[] = await this.db('file_versions')
      .whereIn('file_id', fileIds)
      .andWhere('replaced_at', '<', before)
      .orderBy([
        { column: 'file_id' },
        { column: 'replaced_at', order: 'desc' },
        { column: 'id', order: 'desc' },
      ])
      .select('id', 'user_id', 'file_id', 'content_id', 'size', 'replaced_at');
    return rows.map(numeric);
  }

  /** Users after `after` (in id order) who have versions, with their own quota setting. */
  async usersWithVersions(
    after: string,
    limit: number,
  ): Promise<Array<{ id: string; quota_bytes: number | null }>> {
    return this.db('users as u')
      .where('u.id', '>', after)
      .whereExists(this.db('file_versions as v').whereRaw('v.user_id = u.id').select(this.db.raw('1')))
      .orderBy('u.id')
      .limit(limit)
      .select('u.id', 'u.quota_bytes');
  }

  /**
   * The bytes a user's versions cost: each distinct content of theirs that no file (any user's,
   * live or trashed) has, once.
   */
  async costOf(userId: string): Promise<number> {
    const row = await this.db('contents as c')
      .whereIn('c.id', this.db('file_versions').where({ user_id: userId }).select('content_id'))
      .whereNotExists(heldByAFile(this.db))
      .sum({ bytes: 'c.size' })
      .first();
    return Number(row?.bytes ?? 0);
  }

  /** A user's versions whose content no file has, newest first. */
  async costly(userId: string): Promise<RetainedVersion[]> {
    const rows: RetainedVersion[] = await this.db('file_versions as v')
      .join('contents as c', 'c.id', 'v.content_id')
      .where('v.user_id', userId)
      .whereNotExists(heldByAFile(this.db))
      .orderBy([
        { column: 'v.replaced_at', order: 'desc' },
        { column: 'v.id', order: 'desc' },
      ])
      .select('v.id', 'v.user_id', 'v.file_id', 'v.content_id', 'c.size', 'v.replaced_at');
    return rows.map(numeric);
  }

  /** Deletes these versions (ids); answers the contents they held, each once. */
  async deleteByIds(ids: string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const contents: string[] = await this.db('file_versions')
      .whereIn('id', ids)
      .distinct()
      .pluck('content_id');
    await this.db('file_versions').whereIn('id', ids).delete();
    return contents;
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

/** A file, any user's, live or trashed, has the content aliased `c` (index user_files_content). */
function heldByAFile(db: Knex): Knex.QueryBuilder {
  return db('user_files as f').whereRaw('f.content_id = c.id').select(db.raw('1'));
}

function numeric(row: RetainedVersion): RetainedVersion {
  return { ...row, size: Number(row.size), replaced_at: Number(row.replaced_at) };
}
