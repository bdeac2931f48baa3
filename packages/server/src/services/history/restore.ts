import type { FileEntry, FileList, ListFilesQuery, RestoreResult } from '@dfs/shared';
import { DEFAULT_PAGE_SIZE } from '@dfs/shared';
import { HttpError, notFound } from '../../errors.ts';
import type { ContentRow } from '../../repositories/contents.ts';
import type { FileRow, FileRowWithSha1 } from '../../repositories/files.ts';
import type { Repositories } from '../../repositories/index.ts';
import { actingAs, currentActor } from '../actor.ts';
import { type FileService, MAX_FOLDER_DEPTH, toFileEntry } from '../files.ts';
import type { AuditRecorder } from '../operations/audit.ts';
import { type PastState, PastTree } from './past.ts';
import type { UserJobs } from './user-jobs.ts';

const ROOT = '';
/** Changes made per transaction: few enough to keep locks short, many enough to be quick. */
const BATCH = 200;
/** Restores of up to this many changed entries answer in the request; larger ones run as a job. */
export const INLINE_ENTRIES = 1000;

export type RestoreStart = { done: RestoreResult } | { jobId: string };

export type Progress = (done: number, total: number) => Promise<void>;

type Live = Extract<PastState, { state: 'live' }>;

/**
 * Point-in-time restore: puts a folder's subtree (or the whole account) back as it was at a
 * moment, from the history of every change since. Contents are rows addressed by SHA-1, so a
 * restore moves names and references, never bytes: an entry gets back the place and the content
 * it had (the content it has now stays, as a version), entries made since go to the trash, and
 * nothing is purged. Each change is an ordinary change of the tree, recorded in history as the
 * user's, made `via: restore`.
 */
export class RestoreService {
  constructor(
    private readonly repos: Repositories,
    private readonly files: FileService,
    private readonly jobs: UserJobs,
    private readonly inlineEntries = INLINE_ENTRIES,
    private readonly audit?: AuditRecorder,
  ) {}

  /**
   * A restore answered at once when small, else started as a job to follow: a request should not
   * hang on ten thousand changes.
   */
  async start(
    userId: string,
    folderId: string | null,
    at: number,
    /** Runs once the restore has succeeded (in the request, or at the job's end). */
    succeeded: () => Promise<void> = async () => {},
  ): Promise<RestoreStart> {
    const run = async (progress?: Progress) => {
      const result = await this.restore(userId, folderId, at, progress);
      await succeeded();
      return result;
    };
    const size = await this.size(userId, folderId, at);
    await this.audit?.record({
      action: 'restore.started',
      target: { type: folderId ? 'folder' : 'user', id: folderId ?? userId },
      details: { at: new Date(at).toISOString(), entries: size },
    });
    if (size <= this.inlineEntries) return { done: await run() };
    // The job outlives the request; it keeps the request's actor (async context) for history.
    return { jobId: await this.jobs.start(userId, 'restore', run) };
  }

  /** How many entries changed under `folderId` since `at`: a restore's size, before it runs. */
  async size(userId: string, folderId: string | null, at: number): Promise<number> {
    const scope = await this.scope(userId, folderId);
    return (await this.repos.history.changedAfter(userId, at, scope === ROOT ? undefined : scope)).length;
  }

  async restore(
    userId: string,
    folderId: string | null,
    at: number,
    progress: Progress = async () => {},
  ): Promise<RestoreResult> {
    const scope = await this.scope(userId, folderId);
    const actor = { ...currentActor(), via: 'restore' as const };
    return actingAs(actor, () => this.run(userId, scope, at, progress));
  }

  private async scope(userId: string, folderId: string | null): Promise<string> {
    if (folderId === null) return ROOT;
    const folder = await this.repos.files.find(userId, folderId, 'active');
    if (folder?.kind !== 'folder') throw notFound('folder not found');
    return folder.id;
  }

  private async run(userId: string, scope: string, at: number, progress: Progress): Promise<RestoreResult> {
    const result: RestoreResult = { restored: 0, trashed: 0, unchanged: 0, unavailable: 0 };
    const ids = await this.repos.history.changedAfter(userId, at, scope === ROOT ? undefined : scope);
    const past = new PastTree(this.repos, userId, at);
    await past.load(ids);

    const wanted: Array<{ id: string; then: Live }> = [];
    const unwanted: string[] = [];
    for (const id of ids) {
      const then = past.changed(id);
      if (then?.state === 'live') wanted.push({ id, then });
      else unwanted.push(id);
    }
    // Parents before children: each entry then goes into a folder already where it was, so no
    // move can put a folder inside itself, and a place taken now is taken by an entry still to go.
    const depth = new Map<string, number>();
    const depthOf = async (id: string): Promise<number> => {
      const known = depth.get(id);
      if (known !== undefined) return known;
      depth.set(id, MAX_FOLDER_DEPTH + 1);
      await past.load([id]);
      const parent = past.parentAt(id);
      const d = parent === null ? MAX_FOLDER_DEPTH + 1 : parent === ROOT ? 1 : 1 + (await depthOf(parent));
      depth.set(id, d);
      return d;
    };
    for (const { id } of wanted) await depthOf(id);
    wanted.sort((a, b) => depth.get(a.id)! - depth.get(b.id)!);

    // Entries to bring back that sit in the trash now, by the trashed entry that took them there.
    const trashRoots = new Set<string>();
    for (const { id } of wanted) {
      const row = past.row(id);
      if (row?.status === 'trashed' && row.trash_root_id) trashRoots.add(row.trash_root_id);
    }
    const total = trashRoots.size + wanted.length + unwanted.length;
    let done = 0;
    const tick = async (n: number) => {
      done += n;
      await progress(done, total);
    };
    await progress(0, total);

    /** Names given on the way to entries whose place another needed: put back when trashed. */
    const setAside = new Map<string, string>();
    const wantedIds = new Set(wanted.map((w) => w.id));
    const changed = new Set<string>();

    // 1. Out of the trash, so that what they hold can go back where it was.
    for (const batch of chunks([...trashRoots], BATCH)) {
      await this.repos.transaction(async (tx) => {
        for (const rootId of batch) {
          const root = await tx.files.find(userId, rootId, 'trashed');
          if (!root || root.trash_root_id !== root.id) continue;
          const then = past.changed(rootId);
          const back = then?.state === 'live' && (await this.isLiveFolder(tx, userId, then.parentId));
          const home = back
            ? then.parentId
            : (await this.isLiveFolder(tx, userId, root.parent_id))
              ? root.parent_id
              : ROOT;
          const name = back ? then.name : root.name;
          const free = await this.freePlace(tx, userId, home, name, rootId, setAside, wantedIds);
          await this.files.untrashIn(tx, root, home, free);
          if (free !== root.name && !wantedIds.has(rootId)) setAside.set(rootId, root.name);
          changed.add(rootId);
        }
      });
      await tick(batch.length);
    }

    // 2. Every entry that was live then: its place, then its content. Files already in their
    // place that only need their old content back (the common case: files overwritten) are
    // done together, per folder, set-wise.
    for (const batch of chunks(wanted, BATCH)) {
      await this.repos.transaction(async (tx) => {
        const rows = new Map(
          (
            await tx.files.byIds(
              userId,
              batch.map((b) => b.id),
            )
          ).map((r) => [r.id, r]),
        );
        const contents = new Map(
          (await tx.contents.findByIds([...new Set(batch.map((b) => b.then.contentId).filter(isId))])).map(
            (c) => [c.id, c],
          ),
        );
        const folders = new Map<string, boolean>();
        const liveFolder = async (id: string) => {
          const known = folders.get(id);
          if (known !== undefined) return known;
          const live = await this.isLiveFolder(tx, userId, id);
          folders.set(id, live);
          return live;
        };
        // Whatever needs its old content back goes set-wise, per folder, once in its place.
        const contentBack = new Map<string, Array<{ row: FileRow; content: ContentRow; moved: boolean }>>();
        for (const { id, then } of batch) {
          const read = rows.get(id);
          if (read?.status !== 'active' || !(await liveFolder(then.parentId))) {
            result.unavailable++;
            continue;
          }
          let row: FileRow = read;
          let moved = changed.has(id);
          if (row.parent_id !== then.parentId || row.name !== then.name) {
            // Read again: an entry set aside earlier in this batch has a new name.
            row = (await tx.files.find(userId, id))!;
            await this.freePlace(tx, userId, then.parentId, then.name, id, setAside, wantedIds, true);
            await this.files.relocateIn(tx, row, then.parentId, then.name);
            moved = true;
            row = { ...row, parent_id: then.parentId, name: then.name };
          }
          if (row.kind !== 'file' || then.contentId === null || then.contentId === row.content_id) {
            if (moved) result.restored++;
            else result.unchanged++;
            continue;
          }
          const content = contents.get(then.contentId);
          if (content?.state !== 'ready') {
            result.unavailable++;
            continue;
          }
          const group = contentBack.get(then.parentId) ?? [];
          group.push({ row, content, moved });
          contentBack.set(then.parentId, group);
        }
        for (const [parentId, group] of contentBack) {
          // The version that held each old content gives back its modification time and goes:
          // that content is the current one again.
          const held = new Map<string, { id: string; mtime: number | null }>();
          for (const v of await tx.fileVersions.ofFiles(group.map((g) => g.row.id))) {
            const key = `${v.file_id}\n${v.content_id}`;
            if (!held.has(key)) held.set(key, { id: v.id, mtime: v.mtime == null ? null : Number(v.mtime) });
          }
          const items = group.map(({ row, content }) => {
            const mtime = held.get(`${row.id}\n${content.id}`)?.mtime;
            return { row, content, ...(mtime == null ? {} : { mtime }) };
          });
          const done = new Set(await this.files.replaceContentsIn(tx, userId, parentId, items));
          const versions = group
            .filter(({ row }) => done.has(row.id))
            .map(({ row, content }) => held.get(`${row.id}\n${content.id}`)?.id)
            .filter(isId);
          await tx.fileVersions.deleteMany(versions);
          for (const { row, moved } of group) {
            if (done.has(row.id) || moved) result.restored++;
            else result.unchanged++;
          }
        }
      });
      await tick(batch.length);
    }

    // 3. What did not exist then, or was in the trash: to the trash (nothing is purged).
    const trashedNow = new Set<string>();
    for (const batch of chunks(unwanted, BATCH)) {
      await this.repos.transaction(async (tx) => {
        for (const id of batch) {
          const row = await tx.files.find(userId, id);
          if (row?.status === 'active') {
            await this.files.trashIn(tx, row);
            trashedNow.add(id);
          }
          // Went with a folder this restore trashed: it went to the trash too.
          if (row && (row.status === 'active' || trashedNow.has(row.trash_root_id ?? ''))) result.trashed++;
          else result.unchanged++;
          const name = setAside.get(id);
          if (row && name !== undefined) await tx.files.update(id, { name });
        }
      });
      await tick(batch.length);
    }
    return result;
  }

  private async isLiveFolder(tx: Repositories, userId: string, id: string): Promise<boolean> {
    if (id === ROOT) return true;
    const row = await tx.files.find(userId, id, 'active');
    return row?.kind === 'folder';
  }

  /**
   * Makes `name` free in `parentId` for entry `id`: an entry of this restore holding it steps
   * aside under a name of its own (it moves to its place, or to the trash, later). Anything else
   * holding it: with `strict`, it steps aside too; otherwise the answer is a name next to it.
   */
  private async freePlace(
    tx: Repositories,
    userId: string,
    parentId: string,
    name: string,
    id: string,
    setAside: Map<string, string>,
    wanted: Set<string>,
    strict = false,
  ): Promise<string> {
    const holder = await tx.files.findLiveByName(userId, parentId, name);
    if (!holder || holder.id === id) return name;
    if (!strict) return setAsideName(name, id);
    const aside = setAsideName(holder.name, holder.id);
    await this.files.relocateIn(tx, holder, holder.parent_id, aside);
    if (!wanted.has(holder.id) && !setAside.has(holder.id)) setAside.set(holder.id, holder.name);
    return name;
  }

  /** A folder's entries as they were at `at` (read-only). */
  async listAt(userId: string, query: ListFilesQuery, at: number): Promise<FileList> {
    if (query.q !== undefined) throw new HttpError('bad_request', '`at` lists a folder; it does not search');
    const parentId = query.parentId ?? ROOT;
    const past = new PastTree(this.repos, userId, at);
    if (parentId !== ROOT) {
      const folder = await this.repos.files.find(userId, parentId);
      if (folder?.kind !== 'folder') throw notFound('folder not found');
      if ((await past.stateOf(parentId)).state === 'absent')
        throw notFound('this folder did not exist at that time');
    }
    const children = await this.repos.files.childrenAnyStatus(userId, parentId);
    past.remember(children);
    const left = await this.repos.history.leftAfter(userId, at, parentId);
    await past.load([...children.map((c) => c.id), ...left]);
    const entries: FileRowWithSha1[] = [];
    const contentIds = new Set<string>();
    for (const id of new Set([...children.map((c) => c.id), ...left])) {
      const row = past.row(id);
      if (!row) continue;
      const own = past.changed(id);
      if (own) {
        if (own.state !== 'live' || own.parentId !== parentId) continue;
        entries.push({
          ...row,
          parent_id: own.parentId,
          name: own.name,
          content_id: own.contentId,
          sha1: null,
        });
        if (own.contentId) contentIds.add(own.contentId);
      } else {
        if (row.parent_id !== parentId) continue;
        if (row.status === 'trashed' && row.trash_root_id === row.id) continue;
        entries.push(row);
      }
    }
    const contents = new Map<string, ContentRow>();
    for (const id of contentIds) {
      const c = await this.repos.contents.findById(id);
      if (c) contents.set(id, c);
    }
    const items: FileEntry[] = entries.map((row) => {
      if (row.sha1 === null && row.content_id) {
        const c = contents.get(row.content_id);
        return toFileEntry({
          ...row,
          status: 'active',
          trashed_at: null,
          sha1: c?.sha1 ?? null,
          size: c ? Number(c.size) : row.size,
        });
      }
      return toFileEntry({ ...row, status: 'active', trashed_at: null });
    });
    sortEntries(items, query);
    const offset = query.offset ?? 0;
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    return { items: items.slice(offset, offset + limit), total: items.length };
  }

  /** What a file held at `at`, for a download. */
  async downloadableAt(
    userId: string,
    id: string,
    at: number,
  ): Promise<{ name: string; mime: string | null; content: ContentRow; createdAt: number }> {
    const row = await this.repos.files.find(userId, id);
    if (row?.kind !== 'file') throw notFound('file not found');
    const past = new PastTree(this.repos, userId, at);
    const then = await past.stateOf(id);
    if (then.state !== 'live' || !then.contentId) throw notFound('this file did not exist at that time');
    const content = await this.repos.contents.findById(then.contentId);
    if (content?.state !== 'ready')
      throw new HttpError('gone', 'the content this file had then is no longer kept');
    return { name: then.name, mime: row.mime, content, createdAt: at };
  }
}

/** A name for an entry stepping aside during a restore: unique by its id, and saying why. */
function setAsideName(name: string, id: string): string {
  return `${name}.restoring-${id.slice(0, 8)}`.slice(0, 255);
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function sortEntries(items: FileEntry[], query: ListFilesQuery): void {
  const sort = query.sort ?? 'name';
  const dir = query.order === 'desc' ? -1 : 1;
  const key = (e: FileEntry): string | number =>
    sort === 'name'
      ? e.name
      : sort === 'size'
        ? e.size
        : Date.parse(sort === 'createdAt' ? e.createdAt : sort === 'updatedAt' ? e.updatedAt : e.mtime);
  items.sort((a, b) => {
    if (a.kind !== b.kind) return a.kind === 'folder' ? -1 : 1;
    const x = key(a);
    const y = key(b);
    return (x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : 1) * dir;
  });
}

const isId = (id: string | null | undefined): id is string => typeof id === 'string' && id !== '';
