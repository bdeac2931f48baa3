import type { FileEntry, FileVersion } from '@dfs/shared';
import { HttpError, notFound } from '../../errors.ts';
import type { Downloadable } from '../../http/download-responder.ts';
import type { FileVersionWithSha1, ListedFileVersion } from '../../repositories/file-versions.ts';
import type { Repositories } from '../../repositories/index.ts';
import { actorOf } from '../actor.ts';
import type { FileService } from '../files.ts';
import type { UserLimits } from '../limits.ts';

/** The id the versions list gives a file's current content. */
export const CURRENT = 'current';

const iso = (ms: number | string | null | undefined) =>
  ms == null ? null : new Date(Number(ms)).toISOString();

/**
 * A file's versions: the contents it had before new ones replaced them (FileService keeps them on
 * every replacement). Listing, downloading, restoring — the current content becomes a version, so
 * a restore loses nothing — and deleting one.
 */
export class VersionService {
  constructor(
    private readonly repos: Repositories,
    private readonly files: FileService,
    private readonly limits: UserLimits,
    private readonly now: () => number,
  ) {}

  async list(userId: string, fileId: string): Promise<FileVersion[]> {
    const file = await this.files.row(userId, fileId, 'active');
    if (file.kind !== 'file' || !file.sha1) throw new HttpError('bad_request', 'folders have no versions');
    const current: FileVersion = {
      id: CURRENT,
      size: Number(file.size),
      sha1: file.sha1,
      createdAt: iso(file.content_at ?? file.created_at)!,
      mtime: iso(file.mtime),
      current: true,
      free: false,
      actor: actorOf(file.content_by),
    };
    const older = await this.repos.fileVersions.list(userId, fileId);
    return [current, ...older.map(toVersion)];
  }

  /** What a version's download sends (the current content's is the file's own). */
  async downloadable(userId: string, fileId: string, versionId: string): Promise<Downloadable> {
    if (versionId === CURRENT) return this.files.downloadable(userId, fileId);
    const file = await this.files.row(userId, fileId, 'active');
    const version = await this.find(userId, fileId, versionId);
    const content = await this.repos.contents.findById(version.content_id);
    if (!content) throw notFound('version not found');
    return { name: file.name, mime: file.mime, content, createdAt: Number(version.created_at) };
  }

  /**
   * Makes a version the file's content again (with its modification time); the content it
   * replaces is kept as a version. The restored version leaves the list: it is the current one.
   */
  async restore(userId: string, fileId: string, versionId: string): Promise<FileEntry> {
    if (versionId === CURRENT) return this.files.get(userId, fileId);
    await this.files.assertWritable(userId, fileId);
    return this.repos.transaction(async (tx) => {
      await tx.users.findForUpdate(userId);
      const version = await tx.fileVersions.find(userId, fileId, versionId);
      if (!version) throw notFound('version not found');
      await tx.fileVersions.delete(version.id);
      return this.files.replaceContentIn(
        tx,
        userId,
        fileId,
        { id: version.content_id, sha1: version.sha1, size: Number(version.size) },
        (bytes, t) => this.limits.assertRoom(userId, { bytes, entries: 0 }, t),
        version.mtime == null ? undefined : Number(version.mtime),
      );
    });
  }

  /** Deletes a version for good; its content goes when nothing else holds it. */
  async delete(userId: string, fileId: string, versionId: string): Promise<void> {
    if (versionId === CURRENT)
      throw new HttpError('bad_request', 'the current content is not deleted as a version');
    await this.files.row(userId, fileId, 'active');
    const version = await this.find(userId, fileId, versionId);
    await this.repos.transaction(async (tx) => {
      await tx.fileVersions.delete(version.id);
      await tx.contents.refreshReference(version.content_id, this.now());
    });
  }

  private async find(userId: string, fileId: string, versionId: string): Promise<FileVersionWithSha1> {
    const version = await this.repos.fileVersions.find(userId, fileId, versionId);
    if (!version) throw notFound('version not found');
    return version;
  }
}

function toVersion(row: ListedFileVersion): FileVersion {
  return {
    id: row.id,
    size: Number(row.size),
    sha1: row.sha1,
    createdAt: iso(row.created_at)!,
    mtime: iso(row.mtime),
    current: false,
    free: row.free,
    actor: actorOf(row.made_by),
  };
}
