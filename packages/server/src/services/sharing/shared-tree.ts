import type { FileEntry, FileList, HistoryPage, HistoryQuery, ListFilesQuery } from '@dfs/shared';
import { DEFAULT_PAGE_SIZE } from '@dfs/shared';
import { HttpError } from '../../errors.ts';
import type { Repositories } from '../../repositories/index.ts';
import type { FileService } from '../files.ts';
import { toFileEntry } from '../files.ts';
import type { HistoryService } from '../history/history.ts';
import type { Access, AccessService, Mount } from './access.ts';

/**
 * The tree as a recipient sees it: their own entries with what is shared with them at the top,
 * and inside a share the owner's entries, each marked with the role and the owner. Paths and
 * history start at the share (what lies above it in the owner's tree is not theirs to see).
 */
export class SharedTree {
  constructor(
    private readonly repos: Repositories,
    private readonly access: AccessService,
    private readonly files: FileService,
    private readonly history: HistoryService,
  ) {}

  private async ownerName(ownerId: string, reads: Repositories): Promise<string> {
    return (await reads.users.findById(ownerId))?.username ?? '';
  }

  /** The mount an access came through (its name in the recipient's tree). */
  private async mountOf(userId: string, access: Access, reads: Repositories): Promise<Mount | undefined> {
    if (access.shareRootId === null) return undefined;
    return (await this.access.mounts(userId, reads)).find((m) => m.fileId === access.shareRootId);
  }

  /** An owner's entry as the recipient sees it: marked, and the share's top named as mounted. */
  private present(entry: FileEntry, access: Access, owner: string, mount: Mount | undefined): FileEntry {
    if (access.role === 'owner') return entry;
    const top = entry.id === access.shareRootId;
    return {
      ...entry,
      ...(top ? { parentId: null, name: mount?.name ?? entry.name } : {}),
      shared: { role: access.role, owner: { username: owner } },
    };
  }

  async get(userId: string, id: string, reads = this.repos): Promise<FileEntry> {
    const access = await this.access.require(userId, id, 'read', reads);
    const entry = await this.files.get(access.ownerId, id, reads);
    if (access.role === 'owner') return entry;
    return this.present(
      entry,
      access,
      await this.ownerName(access.ownerId, reads),
      await this.mountOf(userId, access, reads),
    );
  }

  /** Breadcrumbs: from the user's root; inside a share, from the share down. */
  async path(userId: string, id: string, reads = this.repos): Promise<FileEntry[]> {
    const access = await this.access.require(userId, id, 'read', reads);
    const chain = await this.files.path(access.ownerId, id, reads);
    if (access.role === 'owner') return chain;
    const top = chain.findIndex((e) => e.id === access.shareRootId);
    const owner = await this.ownerName(access.ownerId, reads);
    const mount = await this.mountOf(userId, access, reads);
    return chain.slice(Math.max(top, 0)).map((e) => this.present(e, access, owner, mount));
  }

  /**
   * A folder's entries. The root (no folder, no search) lists the user's own entries, then what
   * is shared with them (after their own, so paging over their own stays as it was).
   */
  async list(userId: string, query: ListFilesQuery, reads = this.repos): Promise<FileList> {
    const parentId = query.parentId ?? '';
    if (query.q !== undefined && query.q !== '') return this.files.list(userId, query, reads);
    if (parentId !== '') {
      const access = await this.access.require(userId, parentId, 'read', reads);
      const list = await this.files.list(access.ownerId, query, reads);
      if (access.role === 'owner') return list;
      const owner = await this.ownerName(access.ownerId, reads);
      // Entries inside are reached at least as the folder is (a share further down may give more).
      return {
        ...list,
        items: list.items.map((e) => this.present(e, { ...access, shareRootId: null }, owner, undefined)),
      };
    }
    const own = await this.files.list(userId, query, reads);
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const offset = query.offset ?? 0;
    const mounts = await this.access.mounts(userId, reads);
    if (mounts.length === 0) return own;
    const total = own.total + mounts.length;
    const room = limit - own.items.length;
    if (room <= 0) return { items: own.items, total };
    const start = Math.max(0, offset - own.total);
    const shown = mounts.slice(start, start + room);
    const rows = new Map(
      (await reads.files.liveByIdsAnyOwner(shown.map((m) => m.fileId))).map((r) => [r.id, r]),
    );
    const items = shown.flatMap((m) => {
      const row = rows.get(m.fileId);
      if (!row) return [];
      return [
        {
          ...toFileEntry(row),
          name: m.name,
          parentId: null,
          shared: { role: m.role, owner: { username: m.owner } },
        },
      ];
    });
    return { items: [...own.items, ...items], total };
  }

  /**
   * History: the user's own, or (with `folderId` of a shared folder) the events of that folder's
   * subtree in its owner's history, with paths starting at the share.
   */
  async historyPage(userId: string, query: HistoryQuery): Promise<HistoryPage> {
    if (query.folderId === undefined) return this.history.page(userId, query);
    const access = await this.access.require(userId, query.folderId, 'read');
    if (access.role === 'owner') return this.history.page(userId, query);
    const chain = await this.files.path(access.ownerId, query.folderId);
    const top = chain.findIndex((e) => e.id === access.shareRootId);
    const mount = await this.mountOf(userId, access, this.repos);
    const ownerPrefix = `/${chain
      .slice(0, Math.max(top, 0) + 1)
      .map((e) => e.name)
      .join('/')}`;
    const shownPrefix = `/${mount?.name ?? chain[Math.max(top, 0)]?.name ?? ''}`;
    // Paths outside the share (where an entry came from, or went) are not the recipient's to see.
    const rewrite = (path: string | null) => {
      if (path === null) return null;
      if (path === ownerPrefix || path.startsWith(`${ownerPrefix}/`))
        return shownPrefix + path.slice(ownerPrefix.length);
      return null;
    };
    const page = await this.history.page(access.ownerId, query);
    return {
      ...page,
      items: page.items.map((e) => {
        const { appPasswordId: _hidden, ...actor } = e.actor;
        return { ...e, path: rewrite(e.path), oldPath: rewrite(e.oldPath), actor };
      }),
    };
  }

  /**
   * Where a rename or move may put the entry: both ends in the same owner's tree, the target
   * reachable for writing. Answers whose tree the change runs in.
   */
  async assertMovable(userId: string, id: string, parentId: string | null | undefined): Promise<Access> {
    const access = await this.access.requireChange(userId, id);
    if (parentId === undefined) return access;
    const target = await this.access.parent(userId, parentId);
    if (target.ownerId !== access.ownerId)
      throw new HttpError(
        'bad_request',
        "items cannot move between different people's files: download and upload a copy instead",
      );
    return access;
  }
}
