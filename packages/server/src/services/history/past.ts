import type { FileRowWithSha1 } from '../../repositories/files.ts';
import type { HistoryEventRow } from '../../repositories/history.ts';
import type { Repositories } from '../../repositories/index.ts';
import { MAX_FOLDER_DEPTH } from '../files.ts';

const ROOT = '';

/**
 * How an entry was at a moment, as its first change after that moment tells: an entry made later
 * did not exist; one whose next change was a restore or a purge was in the trash; any other change
 * (replaced, renamed, moved, trashed) says where it was and what it held just before.
 */
export type PastState =
  | { state: 'absent' }
  | { state: 'trashed' }
  | { state: 'live'; parentId: string; name: string; contentId: string | null };

export function pastStateFrom(event: HistoryEventRow): PastState {
  switch (event.action) {
    case 'created':
      return { state: 'absent' };
    case 'restored':
    case 'purged':
      return { state: 'trashed' };
    default:
      return {
        state: 'live',
        parentId: event.old_parent_id ?? ROOT,
        name: event.old_name ?? '',
        contentId: event.old_content_id,
      };
  }
}

/**
 * A user's tree as it was at `at`, read from today's rows and the history since. An entry with no
 * change since `at` is as it is now, except that whether it was live follows its folders (trash
 * and restore are recorded for the entry the user trashed, not for what went with it).
 */
export class PastTree {
  private readonly past = new Map<string, PastState | null>();
  private readonly rows = new Map<string, FileRowWithSha1 | null>();

  constructor(
    private readonly repos: Repositories,
    readonly userId: string,
    readonly at: number,
  ) {}

  /** Reads the first change after `at` of each of `ids` and their rows (once per id). */
  async load(ids: string[]): Promise<void> {
    const fresh = [...new Set(ids)].filter((id) => !this.past.has(id));
    if (fresh.length === 0) return;
    for (const id of fresh) this.past.set(id, null);
    for (const event of await this.repos.history.firstAfter(this.userId, this.at, fresh))
      this.past.set(event.file_id, pastStateFrom(event));
    const missing = fresh.filter((id) => !this.rows.has(id));
    for (const id of missing) this.rows.set(id, null);
    for (const row of await this.repos.files.byIds(this.userId, missing)) this.rows.set(row.id, row);
  }

  /** Rows already read elsewhere (a folder's children), so `load` does not read them again. */
  remember(rows: FileRowWithSha1[]): void {
    for (const row of rows) this.rows.set(row.id, row);
  }

  /** The entry's state then when it changed since (`load`ed first); undefined when it did not. */
  changed(id: string): PastState | undefined {
    return this.past.get(id) ?? undefined;
  }

  /** Today's row (`load`ed first); null once purged. */
  row(id: string): FileRowWithSha1 | null {
    return this.rows.get(id) ?? null;
  }

  /** The entry's state at `at`, following its folders for what it does not say itself. */
  async stateOf(id: string): Promise<PastState> {
    await this.load([id]);
    const own = this.changed(id);
    if (own) return own;
    const row = this.row(id);
    if (!row) return { state: 'absent' };
    if (row.status === 'trashed' && row.trash_root_id === row.id) return { state: 'trashed' };
    const self: PastState = {
      state: 'live',
      parentId: row.parent_id,
      name: row.name,
      contentId: row.content_id,
    };
    return row.parent_id === ROOT || (await this.liveAt(row.parent_id)) ? self : { state: 'trashed' };
  }

  /** Whether a folder was live at `at`: its own state, or (unchanged since) its parent's. */
  async liveAt(id: string): Promise<boolean> {
    let at = id;
    for (let depth = 0; depth <= MAX_FOLDER_DEPTH && at !== ROOT; depth++) {
      await this.load([at]);
      const own = this.changed(at);
      if (own) {
        if (own.state !== 'live') return false;
        at = own.parentId;
        continue;
      }
      const row = this.row(at);
      if (!row) return false;
      if (row.status === 'trashed' && row.trash_root_id === row.id) return false;
      at = row.parent_id;
    }
    return at === ROOT;
  }

  /** The folder an entry was in at `at` (its parent now when it did not change since). */
  parentAt(id: string): string | null {
    const own = this.changed(id);
    if (own) return own.state === 'live' ? own.parentId : null;
    return this.row(id)?.parent_id ?? null;
  }
}
