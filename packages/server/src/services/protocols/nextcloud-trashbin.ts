import { HttpError, notFound } from '../../errors.ts';
import type { FileRowWithSha1 } from '../../repositories/files.ts';
import type { Repositories } from '../../repositories/index.ts';
import { type FileService, MAX_FOLDER_DEPTH } from '../files.ts';

/** One thing the user put in the trash (with what went with it), as Nextcloud's trashbin shows it. */
export interface TrashItem {
  row: FileRowWithSha1;
  /** The URL segment that names it under `trash/`: unique, and read back to exactly this row. */
  segment: string;
  /** Where it was, from the user's root, without a leading slash (`Documents/report.pdf`). */
  originalLocation: string;
  /** When it was trashed, in seconds since 1970. */
  deletedAt: number;
}

/** What a path under `trash/` names: an item, or an entry that went to the trash inside one. */
export interface TrashEntry {
  item: TrashItem;
  row: FileRowWithSha1;
  /** The names below the item's segment (empty for the item itself). */
  below: string[];
}

/**
 * `<name>.d<seconds>.<row id>`: Nextcloud's `<name>.d<deletion time>` made unique by the row id
 * (two "notes.txt" trashed in one second are two items), which is also how it is read back.
 */
function segmentOf(row: FileRowWithSha1): string {
  return `${row.name}.d${Math.floor(Number(row.trashed_at) / 1000)}.${row.id}`;
}

/**
 * Nextcloud's trashbin (`/remote.php/dav/trashbin/<user>/`) over dfs's trash: the trash roots are
 * its items, restore and purge follow FileService's rules.
 */
export class NextcloudTrashbin {
  constructor(
    private readonly repos: Repositories,
    private readonly files: FileService,
  ) {}

  /** Every item in the user's trash, the latest trashed first. */
  async items(userId: string): Promise<TrashItem[]> {
    const { items } = await this.repos.files.list(
      userId,
      { trashRoots: true },
      { sort: 'updatedAt', order: 'desc', limit: null, offset: 0 },
    );
    const folders = new Map<string, { name: string; parent: string } | null>();
    const out: TrashItem[] = [];
    for (const row of items) out.push(await this.item(userId, row, folders));
    return out;
  }

  /**
   * The trash item `row` is. Its original location is read from the folder it was trashed from,
   * whose path is that folder's path now (renamed or trashed since, it still names it): dfs keeps
   * the folder, not the path. When that folder is gone for good, the item was at the root as far
   * as anyone can tell, which is also where a restore puts it. `folders` caches the folders read.
   */
  private async item(
    userId: string,
    row: FileRowWithSha1,
    folders: Map<string, { name: string; parent: string } | null>,
  ): Promise<TrashItem> {
    const names = [row.name];
    for (let at = row.parent_id; at !== '' && names.length <= MAX_FOLDER_DEPTH; ) {
      let folder = folders.get(at);
      if (folder === undefined) {
        const found = await this.repos.files.find(userId, at);
        folder = found ? { name: found.name, parent: found.parent_id } : null;
        folders.set(at, folder);
      }
      if (folder === null) {
        names.splice(0, names.length - 1);
        break;
      }
      names.unshift(folder.name);
      at = folder.parent;
    }
    return {
      row,
      segment: segmentOf(row),
      originalLocation: names.join('/'),
      deletedAt: Math.floor(Number(row.trashed_at) / 1000),
    };
  }

  /** The item a `trash/` segment names; `not_found` for anything else. */
  async findItem(userId: string, segment: string): Promise<TrashItem> {
    const id = segment.slice(segment.lastIndexOf('.') + 1);
    const row = id === '' ? undefined : await this.repos.files.find(userId, id, 'trashed');
    if (!row || row.trash_root_id !== row.id || segmentOf(row) !== segment)
      throw notFound(`nothing in the trash is called "${segment}"`);
    return this.item(userId, row, new Map());
  }

  /** What `path` (below `trash/`: the item's segment, then names inside it) names. */
  async resolve(userId: string, path: string[]): Promise<TrashEntry> {
    const [segment, ...below] = path;
    if (segment === undefined) throw new HttpError('bad_request', 'name a trash item');
    const item = await this.findItem(userId, segment);
    let row = item.row;
    for (const name of below) {
      const found =
        row.kind === 'folder'
          ? (await this.repos.files.trashedChildren(userId, row.id, item.row.id, name))[0]
          : undefined;
      if (!found) throw notFound(`nothing called "${name}" in ${path.slice(0, -1).join('/')}`);
      row = found;
    }
    return { item, row, below };
  }

  /** A trashed folder's entries that went to the trash with it. */
  children(userId: string, entry: TrashEntry): Promise<FileRowWithSha1[]> {
    if (entry.row.kind !== 'folder') return Promise.resolve([]);
    return this.repos.files.trashedChildren(userId, entry.row.id, entry.item.row.id);
  }

  /**
   * Puts an item back by dfs's rules (FileService.restore): at its place when its folder is live
   * and the name is free there, else at the root, with ` (n)` when the root has that name.
   */
  async restore(userId: string, path: string[]): Promise<FileRowWithSha1> {
    const { item } = await this.wholeItem(userId, path, 'restored');
    await this.files.restore(userId, item.row.id);
    const row = await this.repos.files.find(userId, item.row.id, 'active');
    if (!row) throw notFound('the restored entry is gone again');
    return row;
  }

  /** Deletes an item for good, with what went to the trash with it. */
  async purge(userId: string, path: string[]): Promise<void> {
    const { item } = await this.wholeItem(userId, path, 'deleted');
    await this.files.purge(userId, item.row.id);
  }

  emptyTrash(userId: string): Promise<number> {
    return this.files.emptyTrash(userId);
  }

  /** dfs restores and deletes what the user trashed as a whole, never a part of it. */
  private async wholeItem(userId: string, path: string[], verb: string): Promise<TrashEntry> {
    const entry = await this.resolve(userId, path);
    if (entry.below.length > 0)
      throw new HttpError(
        'forbidden',
        `only a whole trash item can be ${verb}, not an entry inside a trashed folder`,
      );
    return entry;
  }
}
