import {
  type ContentInfo,
  DEFAULT_PAGE_SIZE,
  type FileEntry,
  type FileList,
  type FolderSummary,
  type ListFilesQuery,
  type OnConflict,
  type PatchFileBody,
} from '@dfs/shared';
import mime from 'mime-types';
import { isUniqueViolation } from '../db/knex.ts';
import { HttpError, notFound } from '../errors.ts';
import type { ContentRow } from '../repositories/contents.ts';
import type { FileVersionRow } from '../repositories/file-versions.ts';
import type { FileRow, FileRowWithSha1 } from '../repositories/files.ts';
import type { HistoryAction } from '../repositories/history.ts';
import type { Repositories } from '../repositories/index.ts';
import { type Actor, actorJson, currentActor } from './actor.ts';
import { newId } from './ids.ts';
import type { UserLimits } from './limits.ts';
import { assertValidName, suffixedName } from './names.ts';

const ROOT = '';
/** Deeper trees break path-based clients (WebDAV, zip, OS path limits) long before this. */
export const MAX_FOLDER_DEPTH = 256;
const MAX_SUFFIX = 1000;

export function toFileEntry(row: FileRowWithSha1): FileEntry {
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    parentId: row.parent_id === ROOT ? null : row.parent_id,
    size: Number(row.size),
    sha1: row.sha1 ?? null,
    mime: row.mime,
    createdAt: new Date(Number(row.created_at)).toISOString(),
    updatedAt: new Date(Number(row.updated_at)).toISOString(),
    mtime: new Date(Number(row.mtime ?? row.updated_at)).toISOString(),
    trashedAt: row.trashed_at === null ? null : new Date(Number(row.trashed_at)).toISOString(),
  };
}

export interface NewFile {
  userId: string;
  parentId: string;
  name: string;
  contentId: string;
  sha1: string;
  size: number;
  /** The source's modification time (epoch ms); the time of the upload when not given. */
  mtime?: number;
}

/** What a file row needs of its content row (`size` as the database driver returns it). */
export type StoredContent = Pick<ContentRow, 'id' | 'sha1' | 'size'>;

/**
 * Locks another protocol holds on paths of a user's tree (WebDAV's, RFC 4918 class 2). The API
 * honours them for every write it makes to an existing entry: `locked` (423) while one is in the
 * way. `paths` is asked for only when the user holds a lock at all.
 */
export interface TreeLocks {
  assertUnlocked(
    userId: string,
    paths: () => Promise<Array<{ path: string[]; deep: boolean }>>,
  ): Promise<void>;
}

/** The per-user tree: folders, names, trash. Content rows are never touched by a rename. */
export class FileService {
  private readonly listeners: ChangeListener[] = [];

  constructor(
    private readonly repos: Repositories,
    private readonly now: () => number,
    private readonly limits: UserLimits,
    /** None for WebDAV itself, which checks locks against the tokens its requests name. */
    private readonly locks: TreeLocks | null = null,
  ) {}

  /** Where an entry is, as history keeps it: `/a/b/name`, and the ids from the top down to it. */
  private async placeOf(tx: Repositories, userId: string, id: string): Promise<Place> {
    const chain = await tx.files.lineage(userId, id, MAX_FOLDER_DEPTH);
    // A gap (an id of '') means a folder on the way is gone: deleted for good.
    if (chain.length === 0 || chain[0]!.id === '') throw notFound('a parent folder is gone');
    return { path: `/${chain.map((e) => e.name).join('/')}`, ids: chain.map((e) => e.id) };
  }

  /** Where a row just inserted is: its folder's place and its own name (its row is not read back). */
  private async newPlaceOf(tx: Repositories, row: FileRow): Promise<Place> {
    if (row.parent_id === ROOT) return { path: `/${row.name}`, ids: [row.id] };
    const folder = await this.placeOf(tx, row.user_id, row.parent_id);
    return { path: `${folder.path}/${row.name}`, ids: [...folder.ids, row.id] };
  }

  /**
   * Where a trashed entry was: its path through the folders it went from, or just its name once
   * one of them is deleted for good.
   */
  private async formerPlaceOf(tx: Repositories, userId: string, row: FileRow): Promise<Place> {
    try {
      return await this.placeOf(tx, userId, row.id);
    } catch (error) {
      if (error instanceof HttpError && error.code === 'not_found')
        return { path: `/${row.name}`, ids: [row.id] };
      throw error;
    }
  }

  /** One event of the user's history, in the transaction of the change it tells. */
  private async record(tx: Repositories, event: HistoryEvent): Promise<void> {
    await this.recordMany(tx, [event]);
  }

  /** Events of one transaction, in order. */
  private async recordMany(tx: Repositories, events: HistoryEvent[]): Promise<void> {
    if (events.length === 0) return;
    const actor = currentActor();
    const actorText = JSON.stringify(actor);
    const at = this.now();
    await tx.history.insertMany(
      events.map(({ action, row, before, after, contentId, oldContentId }) => {
        const ids = new Set([...(before?.ids ?? []), ...(after?.ids ?? [])]);
        return {
          user_id: row.user_id,
          at,
          action,
          file_id: row.id,
          kind: row.kind,
          parent_id: after ? row.parent_id : null,
          name: after ? row.name : null,
          path: after?.path ?? null,
          old_parent_id: before?.parentId ?? null,
          old_name: before?.name ?? null,
          old_path: before?.path ?? null,
          content_id: contentId ?? null,
          old_content_id: oldContentId ?? null,
          ancestors: `,${[...ids].join(',')},`,
          actor: actorText,
          actor_type: actor.type,
          app_password_id: actor.appPasswordId ?? null,
        };
      }),
    );
    for (const event of events)
      for (const listener of this.listeners) listener(event.row.user_id, event.action, actor, actorText);
  }

  /** Hears of every change as it is recorded (in its transaction, which may still roll back). */
  listen(listener: ChangeListener): void {
    this.listeners.push(listener);
  }

  /** A write to the file's content: refused (423) while a WebDAV client holds a lock on it. */
  async assertWritable(userId: string, id: string): Promise<void> {
    await this.assertUnlocked(userId, [{ id, deep: false }]);
  }

  private async assertUnlocked(
    userId: string,
    targets: Array<{ id: string; child?: string; deep: boolean }>,
  ): Promise<void> {
    await this.locks?.assertUnlocked(userId, () =>
      Promise.all(
        targets.map(async ({ id, child, deep }) => ({
          path: [
            ...(id === ROOT ? [] : (await this.path(userId, id)).map((e) => e.name)),
            ...(child === undefined ? [] : [child]),
          ],
          deep,
        })),
      ),
    );
  }

  /** '' for the root; otherwise the id of one of the user's live folders. */
  async resolveParent(
    userId: string,
    parentId: string | null | undefined,
    repos = this.repos,
  ): Promise<string> {
    if (parentId === null || parentId === undefined || parentId === ROOT) return ROOT;
    const parent = await repos.files.find(userId, parentId, 'active');
    if (!parent) throw notFound('parent folder not found');
    if (parent.kind !== 'folder') throw new HttpError('not_a_folder', 'parent is not a folder');
    return parent.id;
  }

  /** `reads`: the repositories of a read that may be slightly stale (a read replica's). */
  async get(userId: string, id: string, reads = this.repos): Promise<FileEntry> {
    const row = await reads.files.find(userId, id);
    if (!row) throw notFound('file not found');
    return toFileEntry(row);
  }

  /** A live file's name, type, content row and date, for a download; folders have none. */
  async downloadable(
    userId: string,
    id: string,
  ): Promise<{ name: string; mime: string | null; content: ContentRow; createdAt: number }> {
    const row = await this.row(userId, id, 'active');
    const content = row.content_id ? await this.repos.contents.findById(row.content_id) : undefined;
    if (row.kind !== 'file' || !content)
      throw new HttpError('bad_request', 'folders have no content to download');
    return { name: row.name, mime: row.mime, content, createdAt: Number(row.content_at ?? row.created_at) };
  }

  /** A content's size and replicas, for a user who owns a file with it (anyone else: 404, as if missing). */
  async contentInfo(userId: string, sha1: string): Promise<ContentInfo> {
    const content = await this.repos.contents.findBySha1(sha1);
    if (!content || !(await this.repos.files.userOwnsContent(userId, content.id))) {
      throw notFound('content not found');
    }
    const replicas = await this.repos.contents.replicasOf(content.id);
    return {
      sha1: content.sha1,
      size: Number(content.size),
      createdAt: new Date(Number(content.created_at)).toISOString(),
      replicas: replicas.map((r) => ({ nodeId: r.node_id, nodeName: r.node_name, state: r.state })),
    };
  }

  async row(userId: string, id: string, status?: FileRow['status']): Promise<FileRowWithSha1> {
    const row = await this.repos.files.find(userId, id, status);
    if (!row) throw notFound('file not found');
    return row;
  }

  async list(userId: string, query: ListFilesQuery, reads = this.repos): Promise<FileList> {
    const options = {
      sort: query.sort ?? 'name',
      order: query.order ?? 'asc',
      limit: query.limit ?? DEFAULT_PAGE_SIZE,
      offset: query.offset ?? 0,
    };
    const filter = query.q
      ? { query: query.q }
      : { parentId: await this.resolveParent(userId, query.parentId, reads) };
    const { items, total } = await reads.files.list(userId, filter, options);
    return { items: items.map(toFileEntry), total };
  }

  async listTrash(userId: string, query: ListFilesQuery, reads = this.repos): Promise<FileList> {
    const { items, total } = await reads.files.list(
      userId,
      { trashRoots: true },
      {
        sort: query.sort ?? 'updatedAt',
        order: query.order ?? 'desc',
        limit: query.limit ?? DEFAULT_PAGE_SIZE,
        offset: query.offset ?? 0,
      },
    );
    return { items: items.map(toFileEntry), total };
  }

  /**
   * Makes a folder. With `existing: 'reuse'`, a live folder of that name in the parent is the
   * answer instead of a name conflict (`created` false); a file of that name still conflicts.
   */
  async createFolder(
    userId: string,
    name: string,
    parentId?: string | null,
    existing: 'fail' | 'reuse' = 'fail',
  ): Promise<{ file: FileEntry; created: boolean }> {
    assertValidName(name);
    const parent = await this.resolveParent(userId, parentId);
    await this.assertUnlocked(userId, [{ id: parent, child: name, deep: false }]);
    const conflict = () => new HttpError('name_conflict', `"${name}" already exists in this folder`);
    const reuse = async () => {
      const found = await this.repos.files.findLiveByName(userId, parent, name);
      if (found?.kind !== 'folder') return null;
      return { file: await this.get(userId, found.id), created: false };
    };
    if (existing === 'reuse') {
      const found = await reuse();
      if (found) return found;
    }
    await this.assertRoomBelow(userId, parent);
    const now = this.now();
    const row = this.newRow({ userId, parentId: parent, name, kind: 'folder', now });
    try {
      await this.repos.transaction(async (tx) => {
        await this.limits.assertRoom(userId, { bytes: 0, entries: 1 }, tx);
        await tx.files.insert(row);
        await this.record(tx, { action: 'created', row, after: await this.newPlaceOf(tx, row) });
      });
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      // Two requests made the same folder at once: the one that lost reuses the winner's.
      const found = existing === 'reuse' ? await reuse() : null;
      if (found) return found;
      throw conflict();
    }
    return { file: toFileEntry({ ...row, sha1: null }), created: true };
  }

  /** The folders from the root down to `id`, `id` last (breadcrumbs). */
  async path(userId: string, id: string, reads = this.repos): Promise<FileEntry[]> {
    const chain: FileEntry[] = [];
    for (let at: string | null = id; at && at !== ROOT && chain.length <= MAX_FOLDER_DEPTH; ) {
      const row = await reads.files.find(userId, at);
      if (!row) throw notFound(chain.length === 0 ? 'file not found' : 'a parent folder is gone');
      chain.unshift(toFileEntry(row));
      at = row.parent_id;
    }
    return chain;
  }

  /**
   * A new file over stored `content`, in its own transaction, after the user's quota and entry
   * count allow it.
   */
  addFileWithinLimits(
    place: { userId: string; parentId: string; name: string; mtime?: number },
    content: StoredContent,
    onConflict: OnConflict = 'rename',
  ): Promise<FileEntry> {
    const file: NewFile = { ...place, contentId: content.id, sha1: content.sha1, size: Number(content.size) };
    return this.repos.transaction(async (tx) => {
      await this.limits.assertRoom(file.userId, { bytes: file.size, entries: 1 }, tx);
      return this.placeFile(file, onConflict, tx);
    });
  }

  /**
   * An uploaded file, placed by its upload's rule when the name is taken: `rename` adds it as
   * ` (n)`, `replace` gives the file there the new content (same id; the old content kept as a
   * version), `fail` refuses (409). Room was counted for the whole file beforehand.
   */
  async placeFile(file: NewFile, onConflict: OnConflict, repos = this.repos): Promise<FileEntry> {
    if (onConflict !== 'rename') {
      const taken = await repos.files.findLiveByName(file.userId, file.parentId, file.name);
      if (taken) {
        if (onConflict === 'fail' || taken.kind !== 'file') throw nameTaken(file.name, taken.kind);
        const content = { id: file.contentId, sha1: file.sha1, size: file.size };
        return this.replaceContentIn(repos, file.userId, taken.id, content, async () => {}, file.mtime);
      }
    }
    return this.addFile(file, repos);
  }

  /**
   * Before an upload with `onConflict` starts: `fail` is refused at once when the name is taken,
   * and a file `replace` would change must not be locked by a WebDAV client.
   */
  async assertPlaceable(
    userId: string,
    parentId: string,
    name: string,
    onConflict: OnConflict,
  ): Promise<void> {
    if (onConflict === 'rename') return;
    const taken = await this.repos.files.findLiveByName(userId, parentId, name);
    if (!taken) return;
    if (onConflict === 'fail' || taken.kind !== 'file') throw nameTaken(name, taken.kind);
    await this.assertWritable(userId, taken.id);
  }

  /**
   * Adds an uploaded file; a name already used in the folder gets a ` (n)` suffix rather than
   * failing an upload whose bytes are already stored.
   */
  async addFile(file: NewFile, repos = this.repos): Promise<FileEntry> {
    assertValidName(file.name);
    const now = this.now();
    // Take the content row's write lock before the insert's foreign-key check takes a shared
    // one: two users adding the same content would otherwise both hold S and wait for X
    // (an InnoDB deadlock).
    await repos.contents.markReferenced(file.contentId);
    for (let n = 0; n <= MAX_SUFFIX; n++) {
      const name = n === 0 ? file.name : suffixedName(file.name, n);
      // A failed insert in a transaction keeps what came before it (the folder sizes the insert
      // raises first): a name known to be taken is not tried. A race still ends in the catch.
      if (await repos.files.findLiveByName(file.userId, file.parentId, name)) continue;
      const row: FileRow = {
        ...this.newRow({ userId: file.userId, parentId: file.parentId, name, kind: 'file', now }),
        content_id: file.contentId,
        size: file.size,
        mime: mime.lookup(name) || 'application/octet-stream',
        // Stored even when not given, so a later rename or move leaves a file's time alone.
        mtime: file.mtime ?? now,
        content_at: now,
        content_by: actorJson(),
      };
      try {
        await repos.files.insert(row);
        await this.record(repos, {
          action: 'created',
          row,
          after: await this.newPlaceOf(repos, row),
          contentId: file.contentId,
        });
        return toFileEntry({ ...row, sha1: file.sha1 });
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
      }
    }
    throw new HttpError('name_conflict', `too many files named "${file.name}" in this folder`);
  }

  /**
   * Gives a file new bytes in place (a WebDAV PUT over an existing name): same id, name and place;
   * the old content loses this reference (and is collected when it has no other).
   */
  async replaceContent(
    userId: string,
    id: string,
    content: StoredContent,
    assertRoom: (extraBytes: number, tx: Repositories) => Promise<void>,
    mtime?: number,
  ): Promise<FileEntry> {
    await this.assertUnlocked(userId, [{ id, deep: false }]);
    await this.repos.transaction((tx) => this.replaceContentIn(tx, userId, id, content, assertRoom, mtime));
    return this.get(userId, id);
  }

  /** `replaceContent` inside a transaction the caller holds (locks already checked). */
  async replaceContentIn(
    tx: Repositories,
    userId: string,
    id: string,
    content: StoredContent,
    assertRoom: (extraBytes: number, tx: Repositories) => Promise<void>,
    mtime?: number,
  ): Promise<FileEntry> {
    const now = this.now();
    // The user's row first, as every quota check takes it: two replacements of one file then run
    // one after the other, each reading the content the other left (no version lost between them).
    await tx.users.findForUpdate(userId);
    const row = await tx.files.find(userId, id, 'active');
    if (row?.kind !== 'file') throw notFound('file not found');
    await assertRoom(Math.max(0, Number(content.size) - Number(row.size)), tx);
    await tx.contents.markReferenced(content.id);
    const replaced = row.content_id !== null && row.content_id !== content.id;
    // The content being replaced stays, as a version of the file (the same bytes again: no version).
    let at = now;
    if (replaced) {
      // Strictly after the file's last replacement, so versions keep their order within one ms.
      const last = await tx.fileVersions.latestReplacedAt(id);
      at = Math.max(now, (last ?? 0) + 1);
      await tx.fileVersions.insert({
        id: newId(),
        user_id: userId,
        file_id: id,
        content_id: row.content_id!,
        size: Number(row.size),
        mtime: row.mtime == null ? null : Number(row.mtime),
        created_at: Number(row.content_at ?? row.created_at),
        replaced_at: at,
        made_by: row.content_by ?? null,
      });
    }
    const change: Partial<FileRow> = {
      content_id: content.id,
      size: Number(content.size),
      updated_at: now,
      mtime: mtime ?? now,
      ...(replaced ? { content_at: at, content_by: actorJson() } : {}),
    };
    await tx.files.update(id, change);
    if (replaced) {
      const place = await this.placeOf(tx, userId, id);
      await this.record(tx, {
        action: 'replaced',
        row,
        before: { ...place, parentId: row.parent_id, name: row.name },
        after: place,
        contentId: content.id,
        oldContentId: row.content_id,
      });
    }
    return toFileEntry({ ...row, ...change, sha1: content.sha1 });
  }

  /**
   * `replaceContentIn` for many files of one folder at once (a restore's thousands): the same rows
   * — each replaced content kept as a version, an event each — written set-wise, with the
   * folder's counters raised once. No quota check: the caller vouches for the room. Files whose
   * content is already the one given are left alone; answers the files changed.
   */
  async replaceContentsIn(
    tx: Repositories,
    userId: string,
    parentId: string,
    items: Array<{ row: FileRow; content: StoredContent; mtime?: number }>,
  ): Promise<string[]> {
    const now = this.now();
    await tx.users.findForUpdate(userId);
    const todo = items.filter(
      ({ row, content }) =>
        row.kind === 'file' && row.parent_id === parentId && row.content_id !== content.id,
    );
    if (todo.length === 0) return [];
    await tx.contents.markReferencedMany([...new Set(todo.map((i) => i.content.id))]);
    const last = await tx.fileVersions.latestReplacedAtMany(todo.map((i) => i.row.id));
    const actor = actorJson();
    const versions: FileVersionRow[] = [];
    const changes: Array<{ id: string; patch: Partial<FileRow> }> = [];
    let delta = 0;
    for (const { row, content, mtime } of todo) {
      const at = Math.max(now, (last.get(row.id) ?? 0) + 1);
      if (row.content_id !== null)
        versions.push({
          id: newId(),
          user_id: userId,
          file_id: row.id,
          content_id: row.content_id,
          size: Number(row.size),
          mtime: row.mtime == null ? null : Number(row.mtime),
          created_at: Number(row.content_at ?? row.created_at),
          replaced_at: at,
          made_by: row.content_by ?? null,
        });
      changes.push({
        id: row.id,
        patch: {
          content_id: content.id,
          size: Number(content.size),
          updated_at: now,
          mtime: mtime ?? now,
          content_at: at,
          content_by: actor,
        },
      });
      delta += Number(content.size) - Number(row.size);
    }
    await tx.fileVersions.insertMany(versions);
    await tx.files.setContents(userId, parentId, changes, delta);
    const folder: Place =
      parentId === ROOT ? { path: '', ids: [] } : await this.placeOf(tx, userId, parentId);
    await this.recordMany(
      tx,
      todo.map(({ row, content }) => {
        const place = { path: `${folder.path}/${row.name}`, ids: [...folder.ids, row.id] };
        return {
          action: 'replaced' as const,
          row,
          before: { ...place, parentId: row.parent_id, name: row.name },
          after: place,
          contentId: content.id,
          oldContentId: row.content_id,
        };
      }),
    );
    return todo.map((i) => i.row.id);
  }

  async patch(userId: string, id: string, body: PatchFileBody): Promise<FileEntry> {
    const row = await this.row(userId, id, 'active');
    const patch: Partial<FileRow> = { updated_at: this.now() };
    if (body.name !== undefined) {
      assertValidName(body.name);
      patch.name = body.name;
      patch.live_name = body.name;
      if (row.kind === 'file') patch.mime = mime.lookup(body.name) || 'application/octet-stream';
    }
    if (body.parentId !== undefined) {
      const target = await this.resolveParent(userId, body.parentId);
      if (row.kind === 'folder') await this.assertMovable(userId, target, row.id);
      patch.parent_id = target;
    }
    await this.assertUnlocked(userId, [
      { id: row.id, deep: true },
      { id: patch.parent_id ?? row.parent_id, child: patch.name ?? row.name, deep: true },
    ]);
    try {
      await this.repos.transaction(async (tx) => {
        const before = await this.placeOf(tx, userId, row.id);
        await tx.files.update(row.id, patch);
        const moved = patch.parent_id !== undefined && patch.parent_id !== row.parent_id;
        const renamed = patch.name !== undefined && patch.name !== row.name;
        if (!moved && !renamed) return;
        const after = { ...row, ...patch } as FileRow;
        await this.record(tx, {
          action: moved ? 'moved' : 'renamed',
          row: after,
          before: { ...before, parentId: row.parent_id, name: row.name },
          after: await this.placeOf(tx, userId, row.id),
          contentId: row.content_id,
          oldContentId: row.content_id,
        });
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new HttpError(
          'name_conflict',
          `"${patch.name ?? row.name}" already exists in the target folder`,
        );
      }
      throw error;
    }
    return this.get(userId, id);
  }

  /**
   * How many folders deep `folderId` sits (the root is 0). Stops counting past MAX_FOLDER_DEPTH, so
   * a hostile tree costs a bounded number of queries; `stopAt` is reported if met on the way up.
   */
  private async depthOf(userId: string, folderId: string, stopAt?: string): Promise<number | 'inside'> {
    let depth = 0;
    for (let at = folderId; at !== ROOT; depth++) {
      if (at === stopAt) return 'inside';
      if (depth > MAX_FOLDER_DEPTH) break;
      at = (await this.repos.files.parentOf(userId, at)) ?? ROOT;
    }
    return depth;
  }

  /** Refuses a new folder below the depth limit. */
  private async assertRoomBelow(userId: string, parent: string, levels = 1): Promise<void> {
    const depth = await this.depthOf(userId, parent);
    if (depth !== 'inside' && depth + levels > MAX_FOLDER_DEPTH) {
      throw new HttpError('folder_too_deep', `folders nest at most ${MAX_FOLDER_DEPTH} levels deep`);
    }
  }

  /** Refuses to move a folder into itself, anywhere below it, or so deep that the limit breaks. */
  private async assertMovable(userId: string, target: string, folderId: string): Promise<void> {
    if ((await this.depthOf(userId, target, folderId)) === 'inside') {
      throw new HttpError('move_into_itself', 'a folder cannot move into itself or its subfolders');
    }
    // The moved folder brings its own levels along: count them (one query per level).
    let levels = 1;
    for (let frontier = [folderId]; levels <= MAX_FOLDER_DEPTH; levels++) {
      frontier = await this.repos.files.childFolderIds(userId, frontier);
      if (frontier.length === 0) break;
    }
    await this.assertRoomBelow(userId, target, levels);
  }

  async trash(userId: string, id: string): Promise<void> {
    await this.row(userId, id, 'active');
    await this.assertUnlocked(userId, [{ id, deep: true }]);
    await this.repos.transaction(async (tx) => {
      const row = await tx.files.find(userId, id, 'active');
      if (!row) throw notFound('file not found');
      await this.trashIn(tx, row);
    });
  }

  /** Trashes a live entry (and its subtree) in the caller's transaction; no lock is checked. */
  async trashIn(tx: Repositories, row: FileRow): Promise<void> {
    const before = await this.placeOf(tx, row.user_id, row.id);
    await tx.files.trash(row.user_id, row.id, this.now());
    await this.record(tx, {
      action: 'trashed',
      row,
      before: { ...before, parentId: row.parent_id, name: row.name },
      oldContentId: row.content_id,
    });
  }

  /**
   * Brings a trash root (and what went with it) back as `name` in the live folder `parentId`, in
   * the caller's transaction; the name must be free there.
   */
  async untrashIn(tx: Repositories, row: FileRow, parentId: string, name: string): Promise<void> {
    const was = await this.formerPlaceOf(tx, row.user_id, row);
    await tx.files.restore(row.user_id, row.id, parentId, name, this.now());
    await this.record(tx, {
      action: 'restored',
      row: { ...row, parent_id: parentId, name },
      before: { ...was, parentId: row.parent_id, name: row.name },
      after: await this.placeOf(tx, row.user_id, row.id),
      contentId: row.content_id,
    });
  }

  /**
   * Puts a live entry at `name` in the live folder `parentId` (a move, a rename or both) in the
   * caller's transaction, without the checks `patch` makes: restore knows the place is free and
   * not inside the entry.
   */
  async relocateIn(tx: Repositories, row: FileRow, parentId: string, name: string): Promise<FileRow> {
    // Never a cycle, whatever changed meanwhile: a folder inside itself is a tree no walk ends in.
    if (row.kind === 'folder' && parentId !== ROOT) {
      const target = await tx.files.lineage(row.user_id, parentId, MAX_FOLDER_DEPTH);
      if (target.some((e) => e.id === row.id))
        throw new HttpError('move_into_itself', 'a folder cannot move into itself or its subfolders');
    }
    const before = await this.placeOf(tx, row.user_id, row.id);
    const patch: Partial<FileRow> = { parent_id: parentId, name, live_name: name, updated_at: this.now() };
    if (row.kind === 'file') patch.mime = mime.lookup(name) || 'application/octet-stream';
    await tx.files.update(row.id, patch);
    const after = { ...row, ...patch } as FileRow;
    await this.record(tx, {
      action: parentId !== row.parent_id ? 'moved' : 'renamed',
      row: after,
      before: { ...before, parentId: row.parent_id, name: row.name },
      after: await this.placeOf(tx, row.user_id, row.id),
      contentId: row.content_id,
      oldContentId: row.content_id,
    });
    return after;
  }

  /**
   * Restores to the original folder under the original name when both are still available;
   * otherwise to the root, with a ` (n)` suffix if the root already has that name.
   */
  async restore(userId: string, id: string): Promise<FileEntry> {
    const row = await this.trashRoot(userId, id);
    await this.repos.transaction(async (tx) => {
      const parent =
        row.parent_id === ROOT ? undefined : await tx.files.find(userId, row.parent_id, 'active');
      const placeIsThere = row.parent_id === ROOT || parent !== undefined;
      const restored = (parentId: string, name: string) => this.untrashIn(tx, row, parentId, name);
      if (placeIsThere && !(await tx.files.findLiveByName(userId, row.parent_id, row.name))) {
        await restored(row.parent_id, row.name);
        return;
      }
      for (let n = 0; n <= MAX_SUFFIX; n++) {
        const name = n === 0 ? row.name : suffixedName(row.name, n);
        if (!(await tx.files.findLiveByName(userId, ROOT, name))) {
          await restored(ROOT, name);
          return;
        }
      }
      throw new HttpError('name_conflict', `too many entries named "${row.name}" at the root`);
    });
    return this.get(userId, id);
  }

  /** Deletes a trashed entry (and what went to the trash with it) for good. */
  async purge(userId: string, id: string): Promise<void> {
    await this.trashRoot(userId, id);
    const now = this.now();
    await this.repos.transaction(async (tx) => {
      // Read again inside: restored or purged meanwhile (another tab), there is nothing to purge.
      const row = await tx.files.find(userId, id, 'trashed');
      if (row?.trash_root_id !== id) throw notFound('not in the trash');
      await this.record(tx, {
        action: 'purged',
        row,
        before: { ...(await this.formerPlaceOf(tx, userId, row)), parentId: row.parent_id, name: row.name },
        oldContentId: row.content_id,
      });
      const contentIds = await tx.files.purge(userId, id);
      for (const contentId of contentIds) await tx.contents.refreshReference(contentId, now);
    });
  }

  /** What an entry holds: a folder's files, subfolders and bytes all levels down; a file is itself. */
  async summary(userId: string, id: string, reads = this.repos): Promise<FolderSummary> {
    const row = await reads.files.find(userId, id, 'active');
    if (!row) throw notFound('file not found');
    if (row.kind === 'file') return { files: 1, folders: 0, bytes: Number(row.size) };
    return reads.files.summaryBelow(userId, id);
  }

  /** Empties the trash: every trashed entry, one transaction each (a huge trash is not one lock). */
  async emptyTrash(userId: string): Promise<number> {
    const ids = await this.repos.files.trashRootIds(userId);
    let purged = 0;
    for (const id of ids) {
      try {
        await this.purge(userId, id);
        purged++;
      } catch (err) {
        // Restored or purged meanwhile (another tab): nothing to do for that one.
        if (!(err instanceof HttpError && err.code === 'not_found')) throw err;
      }
    }
    return purged;
  }

  private async trashRoot(userId: string, id: string): Promise<FileRowWithSha1> {
    const row = await this.repos.files.find(userId, id, 'trashed');
    if (!row || row.trash_root_id !== row.id) throw notFound('not in the trash');
    return row;
  }

  private newRow(input: {
    userId: string;
    parentId: string;
    name: string;
    kind: FileRow['kind'];
    now: number;
  }) {
    return {
      id: newId(),
      user_id: input.userId,
      parent_id: input.parentId,
      kind: input.kind,
      name: input.name,
      live_name: input.name,
      content_id: null,
      size: 0,
      mime: null,
      status: 'active',
      trash_root_id: null,
      trashed_at: null,
      created_at: input.now,
      updated_at: input.now,
    } satisfies FileRow;
  }
}

function nameTaken(name: string, kind: 'file' | 'folder'): HttpError {
  return new HttpError(
    'name_conflict',
    kind === 'folder'
      ? `a folder is named "${name}" here: a file cannot replace it`
      : `"${name}" already exists in this folder`,
  );
}

interface HistoryEvent {
  action: HistoryAction;
  row: FileRow;
  before?: Place & { parentId: string; name: string };
  after?: Place;
  contentId?: string | null;
  oldContentId?: string | null;
}

export type ChangeListener = (userId: string, action: HistoryAction, actor: Actor, actorText: string) => void;

/** Where an entry is: its path from the root, and the ids of the folders down to it (itself last). */
interface Place {
  path: string;
  ids: string[];
}
