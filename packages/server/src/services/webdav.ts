import type { Readable } from 'node:stream';
import type { Usage } from '@dfs/shared';
import { HttpError, notFound } from '../errors.ts';
import type { PropUpdate } from '../http/dav-xml.ts';
import type { DavPropertyRow } from '../repositories/dav-properties.ts';
import type { FileRow, FileRowWithSha1 } from '../repositories/files.ts';
import type { Repositories } from '../repositories/index.ts';
import { type DavLimits, propertyBytes } from './dav-limits.ts';
import type { FileService } from './files.ts';
import type { UserLimits } from './limits.ts';
import type { UploadService } from './uploads.ts';

/** The user's root: it has no row of its own. */
const ROOT = '';

const conflict = (message: string) => new HttpError('name_conflict', message);

/** A folder id as FileService takes it: `null` for the root. */
const folderArg = (id: string): string | null => (id === ROOT ? null : id);

/**
 * Where the tree is mounted: dfs's own `/dav/`, and Nextcloud's `/remote.php/webdav/` and
 * `/remote.php/dav/files/<user>/`, which serve the same tree under the same rules.
 */
const MOUNT = /^(\/dav|\/remote\.php\/webdav|\/remote\.php\/dav\/files\/([^/]+))(?=\/|$)/;

/**
 * A URL path's mount (`prefix` as the URL spelled it), the user it names (the files mount only)
 * and the rest of the path; null when it is under no mount.
 */
export function splitMount(pathname: string): { prefix: string; user: string | null; rest: string } | null {
  const found = MOUNT.exec(pathname);
  if (!found) return null;
  let user: string | null = null;
  if (found[2] !== undefined) {
    try {
      user = decodeURIComponent(found[2]);
    } catch {
      throw new HttpError('bad_request', 'the path is not valid percent-encoded UTF-8');
    }
  }
  return { prefix: found[1]!, user, rest: pathname.slice(found[1]!.length) };
}

export { numericFileId } from '../util/file-ids.ts';

/** `oc:id` and `OC-FileId`: the numeric id, at least 8 digits, then this server's instance tag. */
export const ocId = (numeric: string): string => `${numeric.padStart(8, '0')}dfs`;

/** The row id an `oc:fileid` is made from for a user's root, which has no row. */
export const rootIdOf = (userId: string): string => `root:${userId}`;

/**
 * A resource's entity tag, quoted: a file's is its content's SHA-1 (as GET answers it); a
 * folder's changes with every write at or below it (its change counter, repositories/files.ts).
 */
export function entityTag(resource: DavResource, sha1: string | null, rootSeq: number): string {
  if (resource.kind === 'file') return fileEntityTag(sha1);
  if (resource.kind === 'root') return `"r${rootSeq}"`;
  return `"${resource.row.id.replace(/-/g, '').slice(0, 12)}-${Number(resource.row.change_seq ?? 0)}"`;
}

/** A file's entity tag: its content's SHA-1, quoted. */
export const fileEntityTag = (sha1: string | null): string => `"${sha1 ?? ''}"`;

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
    /** What WebDAV bounds (services/dav-limits.ts); the routes read it too. */
    readonly bounds: Readonly<DavLimits>,
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

  /** The change counter of the user's root, for its ETag. */
  rootChangeSeq(userId: string): Promise<number> {
    return this.repos.files.rootChangeSeq(userId);
  }

  /** A resource's quoted entity tag (see `entityTag`). */
  async etag(userId: string, resource: DavResource): Promise<string> {
    if (resource.kind === 'root') return entityTag(resource, null, await this.rootChangeSeq(userId));
    if (resource.kind === 'folder') return entityTag(resource, null, 0);
    return entityTag(resource, await this.sha1Of(userId, resource.row), 0);
  }

  /**
   * The recursive size (`oc:size`) of each folder among `resources` (by id), and of the root
   * (`''`): kept on the rows by every write (repositories/files.ts), so reading them costs at most
   * one query.
   */
  async recursiveSizes(userId: string, resources: DavResource[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const r of resources) if (r.kind === 'folder') out.set(r.row.id, Number(r.row.tree_bytes ?? 0));
    if (resources.some((r) => r.kind === 'root')) out.set(ROOT, await this.repos.files.liveBytes(userId));
    return out;
  }

  /** The dead properties clients set on an entry (PROPPATCH). */
  deadProperties(fileId: string): Promise<DavPropertyRow[]> {
    return this.repos.davProperties.list(fileId);
  }

  /** The dead properties of many entries (a PROPFIND of a folder and its members), by id. */
  deadPropertiesOf(fileIds: string[]): Promise<Map<string, DavPropertyRow[]>> {
    return this.repos.davProperties.listMany(fileIds);
  }

  /**
   * PROPPATCH's instructions on an entry's dead properties: all of them or none. Answers, per
   * instruction, whether it would overstep a bound (services/dav-limits.ts); then nothing is
   * stored. Sizes are checked before the write, so two racing requests may together pass a
   * bound by one request's worth.
   */
  async patchProperties(userId: string, fileId: string, updates: PropUpdate[]): Promise<boolean[]> {
    const b = this.bounds;
    const key = (p: { ns: string; name: string }) => `${p.ns}\n${p.name}`;
    const before = await this.repos.davProperties.list(fileId);
    const after = new Map(before.map((p) => [key(p), propertyBytes(p)]));
    const tooBig = updates.map(
      (u) =>
        u.op === 'set' &&
        (u.prop.ns.length > b.propertyNameChars ||
          u.prop.name.length > b.propertyNameChars ||
          Buffer.byteLength(u.value) > b.propertyValueBytes),
    );
    for (const u of updates) {
      if (u.op === 'set') after.set(key(u.prop), propertyBytes({ ...u.prop, value: u.value }));
      else after.delete(key(u.prop));
    }
    const sum = (sizes: Iterable<number>) => [...sizes].reduce((a, n) => a + n, 0);
    const entryBytes = sum(after.values());
    const grows = entryBytes > sum(before.map(propertyBytes)) || after.size > before.length;
    const overEntry = after.size > b.propertiesPerEntry || entryBytes > b.propertyBytesPerEntry;
    const overUser =
      grows &&
      (await this.repos.davProperties.userBytes(userId)) - sum(before.map(propertyBytes)) + entryBytes >
        b.propertyBytesPerUser;
    // A bound of the entry or the user is overstepped by every property the request sets.
    const refused = tooBig.some(Boolean) || (grows && (overEntry || overUser));
    if (refused) return updates.map((u, i) => tooBig[i]! || (!tooBig.some(Boolean) && u.op === 'set'));
    await this.repos.transaction(async (tx) => {
      for (const u of updates) {
        if (u.op === 'set') {
          const row = { file_id: fileId, ns: u.prop.ns, name: u.prop.name, value: u.value };
          await tx.davProperties.set(userId, row, propertyBytes(row));
        } else await tx.davProperties.remove(fileId, u.prop.ns, u.prop.name);
      }
    });
    return updates.map(() => false);
  }

  usage(userId: string): Promise<Usage> {
    return this.limits.usage(userId);
  }

  /** A PROPPATCH of `DAV:lastmodified`: the entry's modification time (folders' ETags follow). */
  async setMtime(userId: string, id: string, mtime: number): Promise<void> {
    const row = await this.repos.files.find(userId, id, 'active');
    if (!row) throw notFound('no such file or folder');
    await this.repos.files.update(id, { mtime });
  }

  /** The folder that would hold `path`'s last segment; `conflict` (409) when it is not there. */
  async parentOf(userId: string, path: string[]): Promise<string> {
    if (path.length === 0) throw new HttpError('forbidden', 'the root cannot be replaced');
    const parent = await this.resolve(userId, path.slice(0, -1));
    if (!parent || parent.kind === 'file') throw conflict('the parent collection does not exist');
    return parent.kind === 'root' ? ROOT : parent.row.id;
  }

  /** PUT: the body becomes the file at `path`, new (true) or with new bytes in place (false). */
  async put(
    userId: string,
    path: string[],
    body: Readable,
    requestBytes: number | null,
    /** `X-OC-Mtime`, in epoch ms. */
    mtime?: number,
  ): Promise<boolean> {
    const parentId = await this.parentOf(userId, path);
    const existing = await this.resolve(userId, path);
    if (existing?.kind === 'folder')
      throw new HttpError('method_not_allowed', 'a collection cannot be PUT over');
    const content = await this.uploads.storeBody(userId, body, requestBytes);
    if (existing?.kind === 'file') {
      await this.files.replaceContent(
        userId,
        existing.row.id,
        content,
        (bytes, tx) => this.limits.assertRoom(userId, { bytes, entries: 0 }, tx),
        mtime,
      );
      return false;
    }
    await this.files.addFileWithinLimits(
      { userId, parentId, name: path.at(-1)!, ...(mtime === undefined ? {} : { mtime }) },
      content,
    );
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
    if (op === 'copy') await this.assertRoomForProperties(userId, source.row, options.depth0 === true);
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

  /**
   * A copy carries its original's dead properties: they must fit in the user's bound (507)
   * before anything is copied, so a refused COPY leaves nothing half-made.
   */
  private async assertRoomForProperties(userId: string, row: FileRow, depth0: boolean): Promise<void> {
    const ids = [row.id];
    if (row.kind === 'folder' && !depth0) {
      for (let level = [row.id]; level.length > 0; ) {
        const children = await this.repos.files.activeChildren(userId, level);
        ids.push(...children.map((c) => c.id));
        level = children.filter((c) => c.kind === 'folder').map((c) => c.id);
      }
    }
    const adding = await this.repos.davProperties.bytesOf(ids);
    if (adding === 0) return;
    const used = await this.repos.davProperties.userBytes(userId);
    if (used + adding > this.bounds.propertyBytesPerUser)
      throw new HttpError(
        'insufficient_storage',
        `the copy's dead properties (${adding} bytes) do not fit in the ${this.bounds.propertyBytesPerUser} bytes a user may keep`,
      );
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
      // A copy is the same file's content: it keeps its modification time.
      const mtime = Number(row.mtime ?? row.updated_at);
      const copy = await this.files.addFileWithinLimits({ userId, parentId, name, mtime }, content);
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
