import type { Knex } from 'knex';
import { numericFileId } from '../util/file-ids.ts';
import { nameGrams, searchableByGrams } from '../util/name-grams.ts';
import { FileVersionsRepository } from './file-versions.ts';

export interface FileRow {
  id: string;
  user_id: string;
  parent_id: string;
  kind: 'file' | 'folder';
  name: string;
  live_name: string | null;
  content_id: string | null;
  size: number;
  mime: string | null;
  status: 'active' | 'trashed';
  trash_root_id: string | null;
  trashed_at: number | null;
  created_at: number;
  updated_at: number;
  /** The source's modification time (epoch ms); null: none known, `updated_at` stands in. */
  mtime?: number | null;
  /** Raised by every write to the entry or below it (`touch`): a folder's ETag is made of it. */
  change_seq?: number;
  /** A folder's: the bytes of the files below it in its state (live, or trashed with it). */
  tree_bytes?: number;
  /** A file's: when its content was put in place, and who did it (the actor, as JSON). */
  content_at?: number | null;
  content_by?: string | null;
}

export type FileRowWithSha1 = FileRow & { sha1: string | null };

export interface ListOptions {
  sort: 'name' | 'size' | 'createdAt' | 'updatedAt' | 'mtime';
  order: 'asc' | 'desc';
  limit: number | null;
  offset: number;
}

const SORT_COLUMNS = {
  name: 'name',
  size: 'size',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  mtime: 'mtime',
} as const;

/**
 * A search piece with more entries than this is not worth reading: the search's text is common
 * among the user's names, and a scan of them is as quick as a read of its matches.
 */
const GRAM_READ_LIMIT = 5_000;
/** How many of a search's rarest pieces (after the first) each candidate is checked against. */
const GRAM_CHECKS = 3;

/** `!` escapes LIKE wildcards the same way on SQLite and MySQL. */
function likePattern(q: string): string {
  return `%${q.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`)}%`;
}

export class FilesRepository {
  constructor(private readonly db: Knex) {}

  private withSha1() {
    return this.db<FileRowWithSha1>('user_files')
      .leftJoin('contents', 'contents.id', 'user_files.content_id')
      .select('user_files.*', 'contents.sha1 as sha1');
  }

  /**
   * `withSha1` for a page of one folder's entries of one kind in `sort` order, read through the
   * folder index of that order. MariaDB otherwise may walk all of the user's entries in that
   * order (the index of recent files for `createdAt`) and keep the folder's: cheap in a small
   * account, a scan of a million rows in a big one.
   */
  private inFolderOrder(kind: FileRow['kind'], sort: ListOptions['sort']): Knex.QueryBuilder {
    if (this.db.client.config.client !== 'mysql2') return this.withSha1();
    const column = sort === 'mtime' && kind === 'folder' ? 'updated_at' : SORT_COLUMNS[sort];
    return this.db
      .from(this.db.raw('?? FORCE INDEX (??)', ['user_files', `user_files_folder_${column}`]))
      .leftJoin('contents', 'contents.id', 'user_files.content_id')
      .select('user_files.*', 'contents.sha1 as sha1');
  }

  /**
   * Runs `work` in one transaction: the one this repository is bound to, or a new one, so that a
   * write and the change counters it raises land together.
   */
  private atomically<T>(work: (db: Knex) => Promise<T>): Promise<T> {
    const db = this.db as Knex & { isTransaction?: boolean };
    return db.isTransaction ? work(db) : db.transaction((trx) => work(trx));
  }

  /**
   * Raises the change counter of the user's root, of each of `ids` and of every folder above
   * them, and carries each of `bytes` (a size added to or taken from a folder's live content) up
   * from its folder to the root: one recursive read up the parent chains, then one update per
   * distinct change, whatever the folder sizes. The user's row is updated first, so writes of
   * one user queue on it rather than deadlock on folder rows taken in different orders. `usage`
   * is what the write adds to the user's quota counters (sizes of all their rows, and how many).
   */
  private async touch(
    db: Knex,
    userId: string,
    ids: string[],
    bytes: Array<{ folder: string; delta: number }> = [],
    usage: { bytes: number; entries: number } = { bytes: 0, entries: 0 },
  ): Promise<void> {
    const moved = bytes.filter((b) => b.delta !== 0);
    const rootDelta = moved.reduce((sum, b) => sum + b.delta, 0);
    await db('users')
      .where({ id: userId })
      .update({
        tree_seq: db.raw('tree_seq + 1'),
        ...(rootDelta !== 0 ? { tree_bytes: db.raw('tree_bytes + ?', [rootDelta]) } : {}),
        ...(usage.bytes !== 0 ? { used_bytes: db.raw('used_bytes + ?', [usage.bytes]) } : {}),
        ...(usage.entries !== 0 ? { entry_count: db.raw('entry_count + ?', [usage.entries]) } : {}),
      });
    const starts = [...new Set([...ids, ...moved.map((b) => b.folder)].filter((id) => id !== ''))];
    if (starts.length === 0) return;
    const rows: Array<{ start: string; id: string }> = await db
      .withRecursive('up', ['start', 'id', 'parent_id'], (q) =>
        // By id alone: a parent chain never leaves its user's tree, and a condition on the user
        // would let SQLite's planner walk the user's index instead of the primary key.
        q
          .select('id', 'id', 'parent_id')
          .from('user_files')
          .whereIn('id', starts)
          .unionAll((u) =>
            u
              .select('up.start', 'f.id', 'f.parent_id')
              .from('user_files as f')
              .join('up', 'f.id', 'up.parent_id'),
          ),
      )
      .select('start', 'id')
      .from('up');
    const chains = new Map<string, string[]>();
    for (const r of rows) chains.set(r.start, [...(chains.get(r.start) ?? []), r.id]);
    const counted = [...new Set(ids.flatMap((id) => chains.get(id) ?? []))];
    for (let i = 0; i < counted.length; i += 500) {
      await db('user_files')
        .whereIn('id', counted.slice(i, i + 500))
        .increment('change_seq', 1);
    }
    const deltas = new Map<string, number>();
    for (const b of moved)
      for (const id of chains.get(b.folder) ?? []) deltas.set(id, (deltas.get(id) ?? 0) + b.delta);
    const byDelta = new Map<number, string[]>();
    for (const [id, delta] of deltas)
      if (delta !== 0) byDelta.set(delta, [...(byDelta.get(delta) ?? []), id]);
    for (const [delta, folders] of byDelta) {
      for (let i = 0; i < folders.length; i += 500) {
        await db('user_files')
          .whereIn('id', folders.slice(i, i + 500))
          .increment('tree_bytes', delta);
      }
    }
  }

  /**
   * `q` reading the latest committed rows and locking them until the transaction ends on MySQL,
   * whose plain reads see the transaction's snapshot (SQLite has one writer anyway): a counter's
   * change is computed from what is there, not from what was.
   */
  private latest<Q extends Knex.QueryBuilder>(q: Q): Q {
    return this.db.client.config.client === 'mysql2' ? (q.forUpdate() as Q) : q;
  }

  /** Takes the user's row lock, which every write of theirs queues on (see `touch`). */
  private async lockUser(db: Knex, userId: string): Promise<void> {
    await this.latest(db('users').where({ id: userId }).select('id'));
  }

  /** What an entry adds to the folders above it: a file its size, a folder what it holds. */
  private static weight(row: { kind: string; size: unknown; tree_bytes?: unknown }): number {
    return Number(row.kind === 'file' ? row.size : (row.tree_bytes ?? 0));
  }

  /** The change counter of a user's root (its ETag is made of it). */
  async rootChangeSeq(userId: string): Promise<number> {
    const row = await this.db('users').where({ id: userId }).first('tree_seq');
    return Number(row?.tree_seq ?? 0);
  }

  /** The bytes of a user's live files (their root's recursive size), kept by `touch`. */
  async liveBytes(userId: string): Promise<number> {
    const row = await this.db('users').where({ id: userId }).first('tree_bytes');
    return Number(row?.tree_bytes ?? 0);
  }

  /** Throws a unique violation when the folder already has a live entry with this name. */
  async insert(row: FileRow): Promise<void> {
    await this.atomically(async (db) => {
      const live = row.status === 'active' && row.kind === 'file';
      await this.touch(
        db,
        row.user_id,
        [row.parent_id],
        live ? [{ folder: row.parent_id, delta: Number(row.size) }] : [],
        { bytes: Number(row.size), entries: 1 },
      );
      await db('user_files').insert({ ...row, oc_fileid: numericFileId(row.id) });
      await this.indexName(db, row.user_id, row.id, row.name, false);
    });
  }

  /** Writes an entry's name pieces (util/name-grams.ts), replacing those it had when `renamed`. */
  private async indexName(
    db: Knex,
    userId: string,
    id: string,
    name: string,
    renamed: boolean,
  ): Promise<void> {
    if (renamed) await db('user_file_grams').where({ file_id: id }).delete();
    const grams = nameGrams(name);
    if (grams.length > 0)
      await db('user_file_grams').insert(grams.map((gram) => ({ user_id: userId, gram, file_id: id })));
  }

  /**
   * The pieces of a search's text to look it up by, rarest first (each counted up to
   * GRAM_READ_LIMIT, an index range each); undefined when it is better scanned for.
   */
  private async searchGrams(userId: string, text: string): Promise<string[] | undefined> {
    if (!searchableByGrams(text)) return undefined;
    const grams = nameGrams(text);
    if (grams.length === 0) return undefined;
    const counts = await Promise.all(
      grams.map(async (gram) => {
        const row = await this.db
          .from(
            this.db('user_file_grams')
              .where({ user_id: userId, gram })
              .limit(GRAM_READ_LIMIT)
              .select('file_id')
              .as('hits'),
          )
          .count({ n: '*' })
          .first();
        return { gram, n: Number(row?.n ?? 0) };
      }),
    );
    counts.sort((a, b) => a.n - b.n);
    if (counts[0]!.n >= GRAM_READ_LIMIT) return undefined;
    return counts.map((c) => c.gram);
  }

  /**
   * The entry and the folders above it, top first (ids and names only: what a history event
   * keeps); stops after `maxDepth` levels. Empty when the entry is not the user's.
   */
  async lineage(userId: string, id: string, maxDepth: number): Promise<Array<{ id: string; name: string }>> {
    const chain: Array<{ id: string; name: string }> = [];
    for (let at: string | undefined = id; at && at !== '' && chain.length <= maxDepth; ) {
      const row: { id: string; name: string; parent_id: string } | undefined = await this.db('user_files')
        .where({ user_id: userId, id: at })
        .first('id', 'name', 'parent_id');
      if (!row) return chain.length === 0 ? [] : [{ id: '', name: '' }, ...chain];
      chain.unshift({ id: row.id, name: row.name });
      at = row.parent_id;
    }
    return chain;
  }

  /** Whose tree an entry is in, and whether it is live: what deciding who may reach it starts from. */
  async ownerOf(id: string): Promise<{ user_id: string; status: FileRow['status'] } | undefined> {
    return this.db<FileRow>('user_files').where({ id }).first('user_id', 'status');
  }

  /** Live entries by id, whoever owns them (the entries shared with someone). */
  async liveByIdsAnyOwner(ids: string[]): Promise<FileRowWithSha1[]> {
    if (ids.length === 0) return [];
    return this.withSha1().whereIn('user_files.id', ids).andWhere('user_files.status', 'active');
  }

  /** The entry a Nextcloud client names by its `oc:fileid`. */
  async findByOcFileId(userId: string, ocFileId: string): Promise<FileRowWithSha1 | undefined> {
    if (!/^\d{1,19}$/.test(ocFileId)) return undefined;
    const id = await this.db('user_files').where({ user_id: userId, oc_fileid: ocFileId }).first('id');
    return id ? this.find(userId, id.id as string) : undefined;
  }

  async find(userId: string, id: string, status?: FileRow['status']): Promise<FileRowWithSha1 | undefined> {
    const q = this.withSha1().where({ 'user_files.user_id': userId, 'user_files.id': id });
    if (status) q.andWhere('user_files.status', status);
    return q.first();
  }

  /** Which of `names` live entries of the folder have, in one query per 500 names. */
  async liveNamesAmong(userId: string, parentId: string, names: string[]): Promise<Set<string>> {
    const taken = new Set<string>();
    for (let i = 0; i < names.length; i += 500) {
      const rows: Array<{ live_name: string }> = await this.db('user_files')
        .where({ user_id: userId, parent_id: parentId })
        .whereIn('live_name', names.slice(i, i + 500))
        .select('live_name');
      for (const row of rows) taken.add(row.live_name);
    }
    return taken;
  }

  async findLiveByName(userId: string, parentId: string, name: string): Promise<FileRow | undefined> {
    return this.db<FileRow>('user_files')
      .where({ user_id: userId, parent_id: parentId, live_name: name })
      .first();
  }

  async list(
    userId: string,
    filter: { parentId: string } | { query: string } | { trashRoots: true },
    options: ListOptions,
  ): Promise<{ items: FileRowWithSha1[]; total: number }> {
    // A search reads the entries holding its rarest pieces, each checked against a few more
    // (util/name-grams.ts); the LIKE decides, as it does when the names are scanned.
    const grams = 'query' in filter ? await this.searchGrams(userId, filter.query.toLowerCase()) : undefined;
    const scope = (q: Knex.QueryBuilder) => {
      q.where('user_files.user_id', userId);
      if ('parentId' in filter)
        q.andWhere({ 'user_files.parent_id': filter.parentId, 'user_files.status': 'active' });
      else if ('query' in filter) {
        if (grams) {
          q.whereIn(
            'user_files.id',
            this.db('user_file_grams').where({ user_id: userId, gram: grams[0] }).select('file_id'),
          );
          for (const gram of grams.slice(1, 1 + GRAM_CHECKS))
            q.whereExists(
              this.db('user_file_grams')
                .where({ 'user_file_grams.user_id': userId, 'user_file_grams.gram': gram })
                .andWhereRaw('user_file_grams.file_id = user_files.id')
                .select(this.db.raw('1')),
            );
        }
        q.andWhere('user_files.status', 'active').andWhereRaw("LOWER(user_files.name) LIKE ? ESCAPE '!'", [
          likePattern(filter.query),
        ]);
      } else
        q.andWhere('user_files.status', 'trashed').andWhereRaw('user_files.trash_root_id = user_files.id');
      return q;
    };
    const page = (q: Knex.QueryBuilder, offset: number, limit: number | null, kind?: FileRow['kind']) => {
      // Files always have an mtime; a folder's is its updated_at: each half of a folder's
      // listing still reads in index order, and only mixed lists (search, trash) compute it.
      if (options.sort === 'mtime' && kind === undefined)
        q.orderByRaw(
          `COALESCE(user_files.mtime, user_files.updated_at) ${options.order === 'desc' ? 'DESC' : 'ASC'}`,
        );
      else
        q.orderBy(
          `user_files.${options.sort === 'mtime' && kind === 'folder' ? 'updated_at' : SORT_COLUMNS[options.sort]}`,
          options.order,
        );
      q.orderBy('user_files.id', options.order).offset(offset);
      if (limit !== null) q.limit(limit);
      return q;
    };
    const count = async (q: Knex.QueryBuilder) => Number((await q.count({ n: '*' }).first())?.n ?? 0);

    if (!('parentId' in filter)) {
      const [items, total] = await Promise.all([
        page(scope(this.withSha1()), options.offset, options.limit),
        count(scope(this.db('user_files'))),
      ]);
      return { items, total };
    }
    // A folder lists its folders first, then its files: two index-ordered reads stitched at the
    // page boundary instead of one sort over the whole folder.
    const ofKind = (q: Knex.QueryBuilder, kind: FileRow['kind']) =>
      scope(q).andWhere('user_files.kind', kind);
    if (options.offset === 0) {
      // The first page (what a folder opens on) reads its rows beside the counts rather than
      // after them: both halves from their start, the files cut where the folders end.
      const [folders, files, folderRows, fileRows] = await Promise.all([
        count(ofKind(this.db('user_files'), 'folder')),
        count(ofKind(this.db('user_files'), 'file')),
        page(ofKind(this.inFolderOrder('folder', options.sort), 'folder'), 0, options.limit, 'folder'),
        page(ofKind(this.inFolderOrder('file', options.sort), 'file'), 0, options.limit, 'file'),
      ]);
      const items = [...folderRows, ...fileRows];
      return {
        items: options.limit === null ? items : items.slice(0, options.limit),
        total: folders + files,
      };
    }
    const [folders, files] = await Promise.all([
      count(ofKind(this.db('user_files'), 'folder')),
      count(ofKind(this.db('user_files'), 'file')),
    ]);
    const items: FileRowWithSha1[] = [];
    let offset = options.offset;
    let remaining = options.limit;
    if (offset < folders) {
      const rows = await page(
        ofKind(this.inFolderOrder('folder', options.sort), 'folder'),
        offset,
        remaining,
        'folder',
      );
      items.push(...rows);
      if (remaining !== null) remaining -= rows.length;
      offset = 0;
    } else {
      offset -= folders;
    }
    if (remaining === null || remaining > 0) {
      items.push(
        ...(await page(ofKind(this.inFolderOrder('file', options.sort), 'file'), offset, remaining, 'file')),
      );
    }
    return { items, total: folders + files };
  }

  async update(id: string, patch: Partial<FileRow>): Promise<void> {
    await this.atomically(async (db) => {
      const owner: { user_id: string } | undefined = await db('user_files').where({ id }).first('user_id');
      if (owner) await this.lockUser(db, owner.user_id);
      const before: FileRow | undefined = await this.latest(db('user_files').where({ id })).first();
      if (before) {
        // The old place's folders (up from the entry) and the new place's both change; a live
        // entry's bytes leave the old place and arrive at the new one.
        const weight = FilesRepository.weight(before);
        const after = FilesRepository.weight({ ...before, ...patch });
        const parent = patch.parent_id ?? before.parent_id;
        const bytes =
          before.status !== 'active'
            ? []
            : [
                { folder: before.parent_id, delta: -weight },
                { folder: parent, delta: after },
              ];
        if (patch.user_id !== undefined && patch.user_id !== before.user_id)
          throw new Error('an entry never changes owner');
        const resized = patch.size === undefined ? 0 : Number(patch.size) - Number(before.size);
        await this.touch(db, before.user_id, [id, patch.parent_id ?? ''], bytes, {
          bytes: resized,
          entries: 0,
        });
      }
      await db('user_files').where({ id }).update(patch);
      if (before && patch.name !== undefined && patch.name !== before.name)
        await this.indexName(db, before.user_id, id, patch.name, true);
    });
  }

  /**
   * New contents for files of one folder in one go: their rows, and the folder's counters and
   * bytes (`delta`: the sizes' sum of changes) once for all of them rather than once per file.
   */
  async setContents(
    userId: string,
    folder: string,
    changes: Array<{ id: string; patch: Partial<FileRow> }>,
    delta: number,
  ): Promise<void> {
    await this.atomically(async (db) => {
      // The quota counts every row's size, whatever its state: read what the rows hold now
      // rather than trust `delta`, which speaks of the folder's live bytes only.
      await this.lockUser(db, userId);
      let resized = 0;
      for (let i = 0; i < changes.length; i += 500) {
        const chunk = changes.slice(i, i + 500);
        const rows: Array<{ id: string; size: unknown }> = await this.latest(
          db('user_files')
            .where('user_id', userId)
            .whereIn(
              'id',
              chunk.map((c) => c.id),
            )
            .select('id', 'size'),
        );
        const before = new Map(rows.map((r) => [r.id, Number(r.size)]));
        for (const c of chunk)
          if (c.patch.size !== undefined && before.has(c.id))
            resized += Number(c.patch.size) - (before.get(c.id) ?? 0);
      }
      await this.touch(
        db,
        userId,
        changes.map((c) => c.id),
        [{ folder, delta }],
        { bytes: resized, entries: 0 },
      );
      // One statement per 100 rows, each column a CASE on the id (or one value when all agree):
      // a round trip per file was most of a large restore's time on MariaDB.
      for (let i = 0; i < changes.length; i += 100) {
        const chunk = changes.slice(i, i + 100);
        const columns = [...new Set(chunk.flatMap((c) => Object.keys(c.patch)))] as Array<keyof FileRow>;
        const set: Record<string, unknown> = {};
        for (const column of columns) {
          const values = chunk.map((c) => c.patch[column] ?? null);
          if (values.every((v) => v === values[0])) {
            set[column] = values[0];
            continue;
          }
          const whens = chunk.map(() => 'WHEN ? THEN ?').join(' ');
          set[column] = db.raw(
            `CASE id ${whens} END`,
            chunk.flatMap((c, j) => [c.id, values[j]]) as Knex.RawBinding[],
          );
        }
        await db('user_files')
          .whereIn(
            'id',
            chunk.map((c) => c.id),
          )
          .update(set);
      }
    });
  }

  /** The live entries directly inside any of `parentIds`, by name, with their content's SHA-1. */
  async activeChildren(userId: string, parentIds: string[]): Promise<FileRowWithSha1[]> {
    const out: FileRowWithSha1[] = [];
    for (let i = 0; i < parentIds.length; i += 500) {
      out.push(
        ...(await this.withSha1()
          .where({ 'user_files.user_id': userId, 'user_files.status': 'active' })
          .whereIn('user_files.parent_id', parentIds.slice(i, i + 500))
          .orderBy('user_files.name')),
      );
    }
    return out;
  }

  /**
   * Up to `limit` live entries directly inside `parentId` whose names come after `after`, by
   * name (the index of live names serves it): a big folder read a page at a time.
   */
  async activeChildrenPage(
    userId: string,
    parentId: string,
    after: string | null,
    limit: number,
  ): Promise<FileRowWithSha1[]> {
    const q = this.withSha1().where({
      'user_files.user_id': userId,
      'user_files.parent_id': parentId,
      'user_files.status': 'active',
    });
    if (after !== null) q.andWhere('user_files.live_name', '>', after);
    return q.orderBy('user_files.live_name').limit(limit);
  }

  /**
   * The entries directly inside `parentId` that went to the trash with `trashRootId` (not those
   * trashed on their own before it), by name; only the one called `name` when it is given.
   */
  async trashedChildren(
    userId: string,
    parentId: string,
    trashRootId: string,
    name?: string,
  ): Promise<FileRowWithSha1[]> {
    const q = this.withSha1().where({
      'user_files.user_id': userId,
      'user_files.trash_root_id': trashRootId,
      'user_files.parent_id': parentId,
      'user_files.status': 'trashed',
    });
    if (name !== undefined) q.andWhere('user_files.name', name);
    return q.orderBy('user_files.name');
  }

  /** Live entries of a user among `ids` (missing and trashed ones are simply not returned). */
  async activeByIds(userId: string, ids: string[]): Promise<FileRow[]> {
    const out: FileRow[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      out.push(
        ...(await this.db<FileRow>('user_files')
          .where({ user_id: userId, status: 'active' })
          .whereIn('id', ids.slice(i, i + 500))),
      );
    }
    return out;
  }

  /** Entries of a user among `ids`, whatever their status. */
  async byIds(userId: string, ids: string[]): Promise<FileRowWithSha1[]> {
    const out: FileRowWithSha1[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      out.push(
        ...(await this.withSha1()
          .where('user_files.user_id', userId)
          .whereIn('user_files.id', ids.slice(i, i + 500))),
      );
    }
    return out;
  }

  /** Everything directly inside `parentId`, live or trashed (reading the past needs both). */
  async childrenAnyStatus(userId: string, parentId: string): Promise<FileRowWithSha1[]> {
    return this.withSha1().where({ 'user_files.user_id': userId, 'user_files.parent_id': parentId });
  }

  /** Counts and bytes of the live entries below `rootId`, one query per level of the tree. */
  async summaryBelow(
    userId: string,
    rootId: string,
  ): Promise<{ files: number; folders: number; bytes: number }> {
    const out = { files: 0, folders: 0, bytes: 0 };
    let frontier = [rootId];
    while (frontier.length > 0) {
      const next: string[] = [];
      for (let i = 0; i < frontier.length; i += 500) {
        const rows: Array<{ id: string; kind: string; size: number | string }> = await this.db('user_files')
          .where({ user_id: userId, status: 'active' })
          .whereIn('parent_id', frontier.slice(i, i + 500))
          .select('id', 'kind', 'size');
        for (const row of rows) {
          if (row.kind === 'folder') {
            out.folders++;
            next.push(row.id);
          } else {
            out.files++;
            out.bytes += Number(row.size);
          }
        }
      }
      frontier = next;
    }
    return out;
  }

  /** Ids of the entries the user put in the trash (each with its subtree). */
  async trashRootIds(userId: string): Promise<string[]> {
    const rows: Array<{ id: string }> = await this.db('user_files')
      .where({ user_id: userId, status: 'trashed' })
      .whereRaw('trash_root_id = id')
      .select('id');
    return rows.map((r) => r.id);
  }

  /** Ids of every entry below `rootId` (not including it), whatever their status. */
  async descendantIds(userId: string, rootId: string): Promise<string[]> {
    const out: string[] = [];
    let frontier = [rootId];
    while (frontier.length > 0) {
      const next: string[] = [];
      for (let i = 0; i < frontier.length; i += 500) {
        const rows: Array<{ id: string; kind: string }> = await this.db('user_files')
          .where('user_id', userId)
          .whereIn('parent_id', frontier.slice(i, i + 500))
          .select('id', 'kind');
        for (const row of rows) {
          out.push(row.id);
          if (row.kind === 'folder') next.push(row.id);
        }
      }
      frontier = next;
    }
    return out;
  }

  /** Puts an entry and its live subtree in the trash, recording which entry the user trashed. */
  async trash(userId: string, rootId: string, now: number): Promise<void> {
    const root: FileRow | undefined = await this.db('user_files')
      .where({ user_id: userId, id: rootId })
      .first();
    if (root?.status === 'active')
      await this.touch(
        this.db,
        userId,
        [rootId],
        [{ folder: root.parent_id, delta: -FilesRepository.weight(root) }],
      );
    const ids = await this.descendantIds(userId, rootId);
    await this.db('user_files').where({ user_id: userId, id: rootId }).update({
      status: 'trashed',
      live_name: null,
      trash_root_id: rootId,
      trashed_at: now,
      updated_at: now,
    });
    for (let i = 0; i < ids.length; i += 500) {
      await this.db('user_files')
        .where('user_id', userId)
        .whereIn('id', ids.slice(i, i + 500))
        .andWhere('status', 'active')
        .update({ status: 'trashed', live_name: null, trash_root_id: rootId, trashed_at: now });
    }
  }

  /** Brings back what one trash action took; the root may get a new parent and name. */
  async restore(userId: string, rootId: string, parentId: string, name: string, now: number): Promise<void> {
    // What was trashed with the entry comes back with it: its `tree_bytes` still counts it.
    const root: FileRow | undefined = await this.db('user_files')
      .where({ user_id: userId, id: rootId })
      .first();
    await this.touch(
      this.db,
      userId,
      [rootId, parentId],
      root?.status === 'trashed' ? [{ folder: parentId, delta: FilesRepository.weight(root) }] : [],
    );
    await this.db('user_files').where({ user_id: userId, id: rootId }).update({
      status: 'active',
      parent_id: parentId,
      name,
      live_name: name,
      trash_root_id: null,
      trashed_at: null,
      updated_at: now,
    });
    if (root && root.name !== name) await this.indexName(this.db, userId, rootId, name, true);
    await this.db('user_files')
      .where({ user_id: userId, trash_root_id: rootId })
      .update({
        status: 'active',
        live_name: this.db.ref('name'),
        trash_root_id: null,
        trashed_at: null,
      });
  }

  /** Deletes a trashed root and everything trashed with it; returns the contents they referenced. */
  async purge(userId: string, rootId: string): Promise<string[]> {
    return this.atomically((db) => this.purgeIn(db, userId, rootId));
  }

  private async purgeIn(db: Knex, userId: string, rootId: string): Promise<string[]> {
    // The user's row first (as every write), then the rows as they are now, locked: a purge
    // racing this one finds them gone and takes nothing off the counters a second time.
    await this.lockUser(db, userId);
    const gone: Array<{ id: string; size: unknown; content_id: string | null }> = await this.latest(
      db('user_files').where({ user_id: userId, trash_root_id: rootId }).select('id', 'size', 'content_id'),
    );
    const ids = gone.map((r) => r.id);
    await this.touch(db, userId, [rootId], [], {
      bytes: -gone.reduce((sum, r) => sum + Number(r.size), 0),
      entries: -gone.length,
    });
    // The files' versions go with them; their contents are answered too, to be looked at again.
    const versioned = await new FileVersionsRepository(db).deleteOfFiles(ids);
    for (let i = 0; i < ids.length; i += 500) {
      await db('user_files')
        .whereIn('id', ids.slice(i, i + 500))
        .delete();
    }
    const contents = gone.flatMap((r) => (r.content_id === null ? [] : [r.content_id]));
    return [...new Set([...contents, ...versioned])];
  }

  async parentOf(userId: string, id: string): Promise<string | undefined> {
    const row = await this.db('user_files').where({ user_id: userId, id }).first('parent_id');
    return row?.parent_id;
  }

  /** The folders directly inside any of `parentIds` (trashed ones too: they can come back). */
  async childFolderIds(userId: string, parentIds: string[]): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < parentIds.length; i += 500) {
      const rows = await this.db('user_files')
        .where({ user_id: userId, kind: 'folder' })
        .whereIn('parent_id', parentIds.slice(i, i + 500))
        .select('id');
      for (const row of rows) out.push(row.id as string);
    }
    return out;
  }

  async userOwnsContent(userId: string, contentId: string): Promise<boolean> {
    return (
      (await this.db('user_files').where({ user_id: userId, content_id: contentId }).first('id')) !==
      undefined
    );
  }
}
