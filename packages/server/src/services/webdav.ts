import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Usage } from '@dfs/shared';
import { HttpError, notFound } from '../errors.ts';
import type { PropUpdate } from '../http/dav-xml.ts';
import type { DavPropertyRow } from '../repositories/dav-properties.ts';
import type { FileRow, FileRowWithSha1 } from '../repositories/files.ts';
import type { Repositories } from '../repositories/index.ts';
import type { MemberRole } from '../repositories/members.ts';
import { type DavLimits, propertyBytes } from './dav-limits.ts';
import type { FileService } from './files.ts';
import type { UserLimits } from './limits.ts';
import { AccessService, type Mount } from './sharing/access.ts';
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

import { numericFileId as numericFileIdOf } from '../util/file-ids.ts';

/** `oc:id` and `OC-FileId`: the numeric id, at least 8 digits, then this server's instance tag. */
export const ocId = (numeric: string): string => `${numeric.padStart(8, '0')}dfs`;

/** The row id an `oc:fileid` is made from for a user's root, which has no row. */
export const rootIdOf = (userId: string): string => `root:${userId}`;

/**
 * A resource's entity tag, quoted: a file's is its content's SHA-1 (as GET answers it); a
 * folder's changes with every write at or below it (its change counter, repositories/files.ts).
 */
export function entityTag(resource: DavResource, sha1: string | null, rootTag: number | string): string {
  if (resource.kind === 'file') return fileEntityTag(sha1);
  if (resource.kind === 'root') return `"r${rootTag}"`;
  return `"${resource.row.id.replace(/-/g, '').slice(0, 12)}-${Number(resource.row.change_seq ?? 0)}"`;
}

/** A file's entity tag: its content's SHA-1, quoted. */
export const fileEntityTag = (sha1: string | null): string => `"${sha1 ?? ''}"`;

/**
 * How a user reaches an entry that is not theirs: through a share mounted at the top of their
 * tree (services/sharing/access.ts). The entry's row stays its owner's (`row.user_id`), and every
 * write to it runs in the owner's tree, under the owner's quota.
 */
export interface DavShare {
  mount: Mount;
  role: MemberRole;
  /**
   * Whether the entry itself may be moved or deleted: only from inside a share the user edits
   * above it (an entry shared on its own stays its owner's, as everywhere: AccessService).
   */
  changeItself?: boolean;
}

/**
 * What WebDAV sees at a path: the root, a folder or a file; `share` when it is reached through
 * a share (the mount itself when the path is one segment long).
 */
export type DavResource =
  | { kind: 'root'; path: string[] }
  | { kind: 'folder' | 'file'; path: string[]; row: FileRow; share?: DavShare };

/** The shares mounted at the top of a user's tree, and their entries' rows by id. */
export interface Mounted {
  mounts: Mount[];
  rows: Map<string, FileRowWithSha1>;
}

/** Whether the resource is a share's mount point itself (the top of it in the recipient's tree). */
export const isMountPoint = (resource: DavResource): boolean =>
  resource.kind !== 'root' && resource.share !== undefined && resource.path.length === 1;

const VIEWER_REFUSED =
  'this item is shared with you as a viewer: you can open and download it, not change it';

/** A write needs the entry to be the user's own, or reached as an editor. */
function assertEditor(resource: DavResource): void {
  if (resource.kind !== 'root' && resource.share && resource.share.role !== 'editor')
    throw new HttpError('forbidden', VIEWER_REFUSED);
}

/** A move or delete of the entry itself (not a mount point, which is answered on its own). */
function assertChangeable(resource: DavResource): void {
  assertEditor(resource);
  if (resource.kind !== 'root' && resource.share && resource.share.changeItself === false)
    throw new HttpError(
      'forbidden',
      'a shared item itself can only be renamed, moved or deleted by its owner',
    );
}

/**
 * WebDAV's view of a user's tree (/dav/ is their root). Paths are names, resolved one folder at a
 * time, as every user has their own names over the shared content rows.
 */
/**
 * An entry's `oc:fileid`: the one its row keeps (written with it from its id), when the database
 * hands it back exactly (MySQL past 2^53 as a string; SQLite's numbers only up to 2^53), else
 * made again from the id.
 */
export function ocFileIdOf(row: FileRow): string {
  const kept = (row as FileRow & { oc_fileid?: unknown }).oc_fileid;
  if (typeof kept === 'string' && /^\d+$/.test(kept)) return kept;
  if (typeof kept === 'number' && Number.isSafeInteger(kept) && kept >= 0) return String(kept);
  return numericFileIdOf(row.id);
}

/**
 * Entries a PROPFIND reads (and answers) at a time. Small enough that a page's rows die young:
 * pages of 1,000 lived through two scavenges each and were promoted, and a PROPFIND of 10,000
 * entries grew the app's RSS by 62–77 MB of old-space garbage until the next full collection;
 * pages of 250 grow it by 34–43 MB (bench row 14), at the same speed.
 */
const MEMBER_PAGE = 250;

/** A member of a folder a PROPFIND answers: where it is reached, and its content's SHA-1. */
export interface DavMember {
  resource: DavResource;
  sha1: string | null;
}

export class DavService {
  /** Who reaches what (stateless over the repositories): the shares mounted in a user's tree. */
  private readonly access: AccessService;

  constructor(
    private readonly repos: Repositories,
    private readonly limits: UserLimits,
    private readonly files: FileService,
    private readonly uploads: UploadService,
    /** What WebDAV bounds (services/dav-limits.ts); the routes read it too. */
    readonly bounds: Readonly<DavLimits>,
  ) {
    this.access = new AccessService(repos);
  }

  /**
   * The resource at `path` (decoded segments), or null when nothing is there. The first segment
   * names one of the user's own entries or, when none has that name, a share mounted at the top
   * of their tree; below a mount, names resolve in the owner's tree.
   */
  async resolve(userId: string, path: string[]): Promise<DavResource | null> {
    if (path.length === 0) return { kind: 'root', path };
    const own = await this.repos.files.findLiveByName(userId, ROOT, path[0]!);
    if (own) {
      const row = await this.walk(userId, own, path);
      return row ? { kind: row.kind, path, row } : null;
    }
    const mount = (await this.access.mounts(userId)).find((m) => m.name === path[0]);
    if (!mount) return null;
    const [top] = await this.repos.files.liveByIdsAnyOwner([mount.fileId]);
    if (!top) return null;
    const row = await this.walk(mount.ownerId, top, path);
    if (!row) return null;
    // Below the mount the role is asked again: a folder further down may be shared as editor too.
    const reached =
      path.length === 1
        ? { role: mount.role, changeItself: false }
        : await this.access.of(userId, row.id).then(
            (a) =>
              ({ role: a.role === 'viewer' ? 'viewer' : 'editor', changeItself: a.canChangeItself }) as const,
            () => null,
          );
    if (!reached) return null;
    return {
      kind: row.kind,
      path,
      row: path.length === 1 ? { ...row, name: mount.name } : row,
      share: { mount, ...reached },
    };
  }

  /** From `top` (the entry at `path[0]`) down the rest of `path` in `ownerId`'s tree. */
  private async walk(ownerId: string, top: FileRow, path: string[]): Promise<FileRow | null> {
    let row: FileRow | undefined = top;
    for (let i = 1; i < path.length; i++) {
      if (row.kind !== 'folder') return null;
      row = await this.repos.files.findLiveByName(ownerId, row.id, path[i]!);
      if (!row) return null;
    }
    return row;
  }

  async mustResolve(userId: string, path: string[]): Promise<DavResource> {
    const found = await this.resolve(userId, path);
    if (!found) throw notFound(`nothing at /${path.join('/')}`);
    return found;
  }

  /**
   * A folder's (or the root's) live entries, with their content's SHA-1, a page of `pageSize` at a
   * time in name order, so a big folder is never whole in memory: the root lists the user's own
   * entries and then the shares mounted there; a folder in a share lists its owner's entries,
   * reached the way the folder is.
   */
  async *memberPages(
    userId: string,
    resource: DavResource,
    /** The root's mounts, when the caller has read them already (see `mounted`). */
    mounted?: Mounted,
    pageSize = MEMBER_PAGE,
  ): AsyncGenerator<DavMember[]> {
    if (resource.kind === 'file') throw new HttpError('bad_request', 'a file has no members');
    const id = resource.kind === 'root' ? ROOT : resource.row.id;
    const owner = resource.kind === 'root' ? userId : resource.row.user_id;
    const share = resource.kind === 'root' ? undefined : resource.share;
    // The next page is read while the caller writes this one: the database's time and the
    // answer's overlap instead of adding up.
    // A read left behind (the answer stopped early) must not fail unheard.
    const read = (after: string | null) => {
      const page = this.repos.files.activeChildrenPage(owner, id, after, pageSize);
      page.catch(() => undefined);
      return page;
    };
    for (let next = read(null); ; ) {
      const children = await next;
      const more = children.length === pageSize;
      if (more) next = read(children.at(-1)!.name);
      if (children.length > 0) yield await this.asMembers(userId, resource, share, children);
      if (!more) break;
    }
    if (resource.kind === 'root') {
      const { mounts, rows } = mounted ?? (await this.mounted(userId));
      const out: DavMember[] = [];
      for (const mount of mounts) {
        const row = rows.get(mount.fileId);
        if (!row) continue;
        out.push({
          resource: {
            kind: row.kind,
            path: [mount.name],
            row: { ...row, name: mount.name },
            share: { mount, role: mount.role },
          },
          sha1: row.sha1,
        });
      }
      if (out.length > 0) yield out;
    }
  }

  /** Rows of a folder's (or the root's) entries as members of it, reached the way it is. */
  private async asMembers(
    userId: string,
    resource: Exclude<DavResource, { kind: 'file' }>,
    share: DavShare | undefined,
    children: FileRowWithSha1[],
  ): Promise<DavMember[]> {
    // In a share viewed, an entry may be shared with the user as editor on its own too.
    const editing =
      share?.role === 'viewer'
        ? new Set(
            (
              await this.repos.members.reaching(
                userId,
                children.map((c) => c.id),
              )
            )
              .filter((m) => m.role === 'editor')
              .map((m) => m.file_id),
          )
        : new Set<string>();
    return children.map((row) => ({
      resource: {
        kind: row.kind,
        path: [...resource.path, row.name],
        row: row as FileRow,
        ...(share
          ? {
              share: editing.has(row.id)
                ? { ...share, role: 'editor' as const, changeItself: false }
                : { ...share, changeItself: share.role === 'editor' },
            }
          : {}),
      } as DavResource,
      sha1: row.sha1,
    }));
  }

  /**
   * Nextcloud's `oc:share-types` of the user's own entries among `ids`: `0` shared with a user,
   * `1` with a group, `3` a live public link (or upload request); each once, in that order.
   */
  async shareTypes(userId: string, ids: string[]): Promise<Map<string, number[]>> {
    const types = new Map<string, Set<number>>();
    const add = (id: string, type: number) => types.set(id, (types.get(id) ?? new Set()).add(type));
    if (ids.length === 0) return new Map();
    for (let i = 0; i < ids.length; i += 500)
      for (const m of await this.repos.members.kindsOn(ids.slice(i, i + 500)))
        add(m.file_id, m.user_id ? 0 : 1);
    const listed = new Set(ids);
    const now = Date.now();
    for (const link of await this.repos.shares.listByUser(userId))
      if (listed.has(link.file_id) && (link.expires_at === null || Number(link.expires_at) > now))
        add(link.file_id, 3);
    return new Map([...types].map(([id, set]) => [id, [...set].sort()]));
  }

  /**
   * The shares mounted at the top of the user's tree, with their entries' rows: read once for a
   * listing of the root, which needs them for its members and for its ETag.
   */
  async mounted(userId: string): Promise<Mounted> {
    const mounts = await this.access.mounts(userId);
    const rows =
      mounts.length === 0
        ? new Map<string, FileRowWithSha1>()
        : new Map(
            (await this.repos.files.liveByIdsAnyOwner(mounts.map((m) => m.fileId))).map((r) => [r.id, r]),
          );
    return { mounts, rows };
  }

  /** The SHA-1 of a file's content: a listed row carries it; a row resolved by name is looked up. */
  async sha1Of(row: FileRow | FileRowWithSha1): Promise<string | null> {
    if ('sha1' in row) return row.sha1;
    return (await this.repos.files.find(row.user_id, row.id))?.sha1 ?? null;
  }

  /**
   * What the user's root ETag is made of: their tree's change counter and, when shares are
   * mounted there, a digest of each mount's name, role and state (a folder's change counter
   * rises with every write below it, a file's content is its SHA-1). So the root's ETag changes
   * whenever anything inside a mount changes or a mount comes or goes, which is what sync
   * clients (Nextcloud's, rclone bisync) look at first.
   */
  async rootChangeSeq(userId: string, mounted?: Mounted): Promise<string> {
    const seq = await this.repos.files.rootChangeSeq(userId);
    const { mounts, rows } = mounted ?? (await this.mounted(userId));
    if (mounts.length === 0) return String(seq);
    const digest = createHash('sha1');
    for (const m of mounts) {
      const row = rows.get(m.fileId);
      digest.update(
        [m.memberId, m.fileId, m.name, m.role, row?.change_seq, row?.sha1, row?.mtime, row?.updated_at].join(
          '\0',
        ),
      );
      digest.update('\n');
    }
    return `${seq}-${digest.digest('hex').slice(0, 12)}`;
  }

  /** A resource's quoted entity tag (see `entityTag`). */
  async etag(userId: string, resource: DavResource): Promise<string> {
    if (resource.kind === 'root') return entityTag(resource, null, await this.rootChangeSeq(userId));
    if (resource.kind === 'folder') return entityTag(resource, null, 0);
    return entityTag(resource, await this.sha1Of(resource.row), 0);
  }

  /**
   * A write to what is at `path` (PROPPATCH, LOCK): refused (403) when the user reaches it as a
   * viewer, or, when nothing is there, may not add to the folder that would hold it.
   */
  async assertWritable(userId: string, path: string[]): Promise<void> {
    const found = await this.resolve(userId, path);
    if (found) assertEditor(found);
    else if (path.length > 0)
      await this.placeOf(userId, path).catch((error: unknown) => {
        // A missing parent is for the method itself to answer (409); only a refusal counts here.
        if (error instanceof HttpError && error.code === 'forbidden') throw error;
      });
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

  /**
   * A PROPPATCH of `DAV:lastmodified`: the entry's modification time (folders' ETags follow).
   * `userId` is the entry's owner.
   */
  async setMtime(userId: string, id: string, mtime: number): Promise<void> {
    const row = await this.repos.files.find(userId, id, 'active');
    if (!row) throw notFound('no such file or folder');
    await this.repos.files.update(id, { mtime });
  }

  /**
   * The folder that would hold `path`'s last segment, and whose tree it is in (the user's own, or
   * the owner of a share the user edits); `conflict` (409) when it is not there, 403 when the user
   * only views it.
   */
  async placeOf(userId: string, path: string[]): Promise<{ parentId: string; ownerId: string }> {
    if (path.length === 0) throw new HttpError('forbidden', 'the root cannot be replaced');
    const parent = await this.resolve(userId, path.slice(0, -1));
    if (!parent || parent.kind === 'file') throw conflict('the parent collection does not exist');
    if (parent.kind === 'root') return { parentId: ROOT, ownerId: userId };
    assertEditor(parent);
    return { parentId: parent.row.id, ownerId: parent.row.user_id };
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
    const { parentId, ownerId } = await this.placeOf(userId, path);
    const existing = await this.resolve(userId, path);
    if (existing?.kind === 'folder')
      throw new HttpError('method_not_allowed', 'a collection cannot be PUT over');
    if (existing?.kind === 'file') {
      assertEditor(existing);
      // A shared file's new bytes are its owner's: stored and counted against the owner's quota.
      const owner = existing.row.user_id;
      const content = await this.uploads.storeBody(owner, body, requestBytes);
      if (owner !== userId) await this.assertStillReached(userId, path, existing.row.id);
      await this.files.replaceContent(
        owner,
        existing.row.id,
        content,
        (bytes, tx) => this.limits.assertRoom(owner, { bytes, entries: 0 }, tx),
        mtime,
      );
      return false;
    }
    const content = await this.uploads.storeBody(ownerId, body, requestBytes);
    if (ownerId !== userId) await this.assertStillReached(userId, path.slice(0, -1), parentId);
    await this.files.addFileWithinLimits(
      { userId: ownerId, parentId, name: path.at(-1)!, ...(mtime === undefined ? {} : { mtime }) },
      content,
    );
    return true;
  }

  /**
   * Asked again once a body is in: a share revoked (or lowered to viewer) while it streamed no
   * longer takes it, and nothing is added (the stored bytes, referenced by no file, are collected).
   */
  private async assertStillReached(userId: string, path: string[], id: string): Promise<void> {
    const now = await this.resolve(userId, path);
    if (!now || now.kind === 'root' || now.row.id !== id)
      throw conflict(`/${path.join('/')} is no longer shared with you`);
    assertEditor(now);
  }

  async mkcol(userId: string, path: string[]): Promise<void> {
    const { parentId, ownerId } = await this.placeOf(userId, path);
    if (await this.resolve(userId, path))
      throw new HttpError('method_not_allowed', 'something already exists there');
    await this.files.createFolder(ownerId, path.at(-1)!, folderArg(parentId));
  }

  /**
   * DELETE: to the trash, like everywhere else in dfs (the owner's trash, for an entry in a share
   * the user edits). On a share's mount point it leaves the share, as Nextcloud does: it is gone
   * from the user's tree, and the owner's entry stays as it is.
   */
  async delete(userId: string, path: string[]): Promise<void> {
    const found = await this.mustResolve(userId, path);
    if (found.kind === 'root') throw new HttpError('forbidden', 'the root cannot be deleted');
    if (found.share && isMountPoint(found)) {
      await this.leave(userId, found.share.mount.fileId);
      return;
    }
    assertChangeable(found);
    await this.files.trash(found.row.user_id, found.row.id);
  }

  /**
   * The user stops seeing a share, however it reaches them, as `DELETE /api/shared-with-me/:id`
   * does: a share with them alone is removed (the owner sees them gone), a group's is left for
   * them only (the group's other members keep it).
   */
  private async leave(userId: string, fileId: string): Promise<void> {
    await this.repos.transaction(async (tx) => {
      for (const member of await tx.members.reaching(userId, [fileId])) {
        if (member.user_id === userId) await tx.members.delete(member.id);
        else await tx.members.leave(member.id, userId);
      }
    });
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
    if (op === 'move' && isMountPoint(source))
      throw new HttpError(
        'forbidden',
        'a folder or file shared with you keeps its name and place at the top of your files; DELETE it to leave the share',
      );
    const { parentId, ownerId } = await this.placeOf(userId, to);
    const from_ = source.row.user_id;
    if (op === 'move') {
      assertChangeable(source);
      // A move keeps the entry's id, versions and history, which belong to one owner's tree.
      if (from_ !== ownerId)
        throw new HttpError(
          'forbidden',
          'your files and the files shared with you belong to different owners: copy the item there, then delete the original',
        );
    }
    if (op === 'copy')
      await this.assertRoomForProperties(ownerId, from_, source.row, options.depth0 === true);
    const existing = await this.resolve(userId, to);
    if (existing) {
      if (!options.overwrite)
        throw new HttpError('precondition_failed', 'the destination exists and Overwrite is F');
      if (isMountPoint(existing))
        throw new HttpError(
          'forbidden',
          'the destination is a share mounted in your files: it cannot be replaced',
        );
      await this.delete(userId, to);
    }
    const name = to.at(-1)!;
    if (op === 'move') {
      await this.files.patch(ownerId, source.row.id, { name, parentId: folderArg(parentId) });
    } else {
      await this.copyEntry(from_, ownerId, source.row, parentId, name, options.depth0 === true);
    }
    return !existing;
  }

  /**
   * A copy carries its original's dead properties: they must fit in the user's bound (507)
   * before anything is copied, so a refused COPY leaves nothing half-made.
   */
  private async assertRoomForProperties(
    userId: string,
    sourceOwner: string,
    row: FileRow,
    depth0: boolean,
  ): Promise<void> {
    // Dead properties stay with their owner's entries (see copyEntry).
    if (sourceOwner !== userId) return;
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

  /**
   * Copies `row` (in `from`'s tree) into `to`'s tree. Across owners (into or out of a share) the
   * copy is the target owner's, counted against their quota; the dead properties, which count
   * against their writer's bound, stay behind.
   */
  private async copyEntry(
    from: string,
    to: string,
    row: FileRow,
    parentId: string,
    name: string,
    depth0: boolean,
  ): Promise<void> {
    const properties = async (copyId: string) => {
      if (from === to) await this.repos.davProperties.copy(row.id, copyId);
    };
    if (row.kind === 'file') {
      const content = row.content_id ? await this.repos.contents.findById(row.content_id) : undefined;
      if (!content) throw new HttpError('storage_unavailable', `${row.name}: its content is gone`);
      // A copy is the same file's content: it keeps its modification time.
      const mtime = Number(row.mtime ?? row.updated_at);
      const copy = await this.files.addFileWithinLimits({ userId: to, parentId, name, mtime }, content);
      await properties(copy.id);
      return;
    }
    const { file: folder } = await this.files.createFolder(to, name, folderArg(parentId));
    await properties(folder.id);
    if (depth0) return;
    for (const child of await this.repos.files.activeChildren(from, [row.id])) {
      await this.copyEntry(from, to, child, folder.id, child.name, false);
    }
  }
}
