import type { Readable } from 'node:stream';
import type { Usage } from '@dfs/shared';
import { HttpError, notFound } from '../errors.ts';
import type { PropUpdate } from '../http/dav-xml.ts';
import type { DavPropertyRow } from '../repositories/dav-properties.ts';
import type { FileRow, FileRowWithSha1 } from '../repositories/files.ts';
import type { Repositories } from '../repositories/index.ts';
import type { FileService } from './files.ts';
import type { UserLimits } from './limits.ts';
import type { UploadService } from './uploads.ts';

/** The user's root: it has no row of its own. */
const ROOT = '';

const conflict = (message: string) => new HttpError('name_conflict', message);

/** A folder id as FileService takes it: `null` for the root. */
const folderArg = (id: string): string | null => (id === ROOT ? null : id);

/** What WebDAV sees at a path: the root, a folder or a file. */
export type DavResource =
  | { kind: 'root'; path: string[] }
  | { kind: 'folder' | 'file'; path: string[]; row: FileRow };

/**
 * WebDAV's view of a user's tree (/dav/ is their root). Paths are names, resolved one folder at a
 * time, as every user has their own names over the shared content rows.
 */
export class DavService {
  constructor(
    private readonly repos: Repositories,
    private readonly limits: UserLimits,
    private readonly files: FileService,
    private readonly uploads: UploadService,
  ) {}

  /** The resource at `path` (decoded segments), or null when nothing is there. */
  async resolve(userId: string, path: string[]): Promise<DavResource | null> {
    if (path.length === 0) return { kind: 'root', path };
    let parent = ROOT;
    let row: FileRow | undefined;
    for (let i = 0; i < path.length; i++) {
      row = await this.repos.files.findLiveByName(userId, parent, path[i]!);
      if (!row || (i < path.length - 1 && row.kind !== 'folder')) return null;
      parent = row.id;
    }
    return row ? { kind: row.kind, path, row } : null;
  }

  async mustResolve(userId: string, path: string[]): Promise<DavResource> {
    const found = await this.resolve(userId, path);
    if (!found) throw notFound(`nothing at /${path.join('/')}`);
    return found;
  }

  /** A folder's (or the root's) live entries. */
  async children(userId: string, resource: DavResource): Promise<FileRow[]> {
    if (resource.kind === 'file') throw new HttpError('bad_request', 'a file has no members');
    const id = resource.kind === 'root' ? ROOT : resource.row.id;
    return this.repos.files.activeChildren(userId, [id]);
  }

  /** The SHA-1 of a file's content: a listed row carries it; a row resolved by name is looked up. */
  async sha1Of(userId: string, row: FileRow | FileRowWithSha1): Promise<string | null> {
    if ('sha1' in row) return row.sha1;
    return (await this.repos.files.find(userId, row.id))?.sha1 ?? null;
  }

  /** The dead properties clients set on an entry (PROPPATCH). */
  deadProperties(fileId: string): Promise<DavPropertyRow[]> {
    return this.repos.davProperties.list(fileId);
  }

  /** PROPPATCH's instructions on an entry's dead properties: all of them or none. */
  async patchProperties(fileId: string, updates: PropUpdate[]): Promise<void> {
    await this.repos.transaction(async (tx) => {
      for (const u of updates) {
        if (u.op === 'set')
          await tx.davProperties.set({ file_id: fileId, ns: u.prop.ns, name: u.prop.name, value: u.value });
        else await tx.davProperties.remove(fileId, u.prop.ns, u.prop.name);
      }
    });
  }

  usage(userId: string): Promise<Usage> {
    return this.limits.usage(userId);
  }

  /** The folder that would hold `path`'s last segment; `conflict` (409) when it is not there. */
  async parentOf(userId: string, path: string[]): Promise<string> {
    if (path.length === 0) throw new HttpError('forbidden', 'the root cannot be replaced');
    const parent = await this.resolve(userId, path.slice(0, -1));
    if (!parent || parent.kind === 'file') throw conflict('the parent collection does not exist');
    return parent.kind === 'root' ? ROOT : parent.row.id;
  }

  /** PUT: the body becomes the file at `path`, new (true) or with new bytes in place (false). */
  async put(userId: string, path: string[], body: Readable, requestBytes: number | null): Promise<boolean> {
    const parentId = await this.parentOf(userId, path);
    const existing = await this.resolve(userId, path);
    if (existing?.kind === 'folder')
      throw new HttpError('method_not_allowed', 'a collection cannot be PUT over');
    const content = await this.uploads.storeBody(userId, body, requestBytes);
    if (existing?.kind === 'file') {
      await this.files.replaceContent(userId, existing.row.id, content, (bytes, tx) =>
        this.limits.assertRoom(userId, { bytes, entries: 0 }, tx),
      );
      return false;
    }
    await this.files.addFileWithinLimits({ userId, parentId, name: path.at(-1)! }, content);
    return true;
  }

  async mkcol(userId: string, path: string[]): Promise<void> {
    const parentId = await this.parentOf(userId, path);
    if (await this.resolve(userId, path))
      throw new HttpError('method_not_allowed', 'something already exists there');
    await this.files.createFolder(userId, path.at(-1)!, folderArg(parentId));
  }

  /** DELETE: to the trash, like everywhere else in dfs. */
  async delete(userId: string, path: string[]): Promise<void> {
    const found = await this.mustResolve(userId, path);
    if (found.kind === 'root') throw new HttpError('forbidden', 'the root cannot be deleted');
    await this.files.trash(userId, found.row.id);
  }

  /**
   * MOVE and COPY. A copy is a new name over the same content (no byte is copied); a collection
   * is copied with everything in it unless `depth0`. An existing destination is replaced (to the
   * trash) when `overwrite`, else refused (412). Answers whether the destination is new.
   */
  async transfer(
    userId: string,
    op: 'move' | 'copy',
    from: string[],
    to: string[],
    options: { overwrite: boolean; depth0?: boolean },
  ): Promise<boolean> {
    const source = await this.mustResolve(userId, from);
    if (source.kind === 'root') throw new HttpError('forbidden', 'the root cannot be moved or copied');
    if (from.join('/') === to.join('/'))
      throw new HttpError('forbidden', 'source and destination are the same');
    if (
      to.length > from.length &&
      to.slice(0, from.length).join('/') === from.join('/') &&
      source.kind === 'folder'
    ) {
      throw new HttpError('forbidden', 'a collection cannot go inside itself');
    }
    const parentId = await this.parentOf(userId, to);
    const existing = await this.resolve(userId, to);
    if (existing) {
      if (!options.overwrite)
        throw new HttpError('precondition_failed', 'the destination exists and Overwrite is F');
      await this.delete(userId, to);
    }
    const name = to.at(-1)!;
    if (op === 'move') {
      await this.files.patch(userId, source.row.id, { name, parentId: folderArg(parentId) });
    } else {
      await this.copyEntry(userId, source.row, parentId, name, options.depth0 === true);
    }
    return !existing;
  }

  private async copyEntry(
    userId: string,
    row: FileRow,
    parentId: string,
    name: string,
    depth0: boolean,
  ): Promise<void> {
    if (row.kind === 'file') {
      const content = row.content_id ? await this.repos.contents.findById(row.content_id) : undefined;
      if (!content) throw new HttpError('storage_unavailable', `${row.name}: its content is gone`);
      const copy = await this.files.addFileWithinLimits({ userId, parentId, name }, content);
      await this.repos.davProperties.copy(row.id, copy.id);
      return;
    }
    const { file: folder } = await this.files.createFolder(userId, name, folderArg(parentId));
    await this.repos.davProperties.copy(row.id, folder.id);
    if (depth0) return;
    for (const child of await this.repos.files.activeChildren(userId, [row.id])) {
      await this.copyEntry(userId, child, folder.id, child.name, false);
    }
  }
}
