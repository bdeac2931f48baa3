import { createStore, del, entries, set, type UseStore } from 'idb-keyval';

/** A batch (several files, or folders) that had not finished when the page went away. */
export interface BatchRecord {
  id: string;
  /** The account it belongs to: another user of this browser never sees it. */
  userId: string;
  /** The folder it went into (null: the root), and that folder's name when known. */
  parentId: string | null;
  parentName: string | null;
  /** What was picked or dropped: top-level folder and file names. */
  roots: string[];
  /** True when the roots are folders (the notice then offers the folder picker). */
  folders: boolean;
  files: number;
  bytes: number;
  /** Files that had arrived (or were there already) at the last save. */
  done: number;
  startedAt: number;
  savedAt: number;
}

/** Like resume entries: past a week the server swept the unfinished parts long ago. */
const MAX_AGE_MS = 7 * 24 * 3600 * 1000;

/**
 * Unfinished batch and folder uploads in IndexedDB, for the "unfinished uploads" notice: a
 * folder of small files leaves no resume entries (each file is one request), so without this a
 * reload in the middle of one is silent. Its own database: the resume store's has one object
 * store, and adding another would need a version upgrade of a database other tabs hold open.
 */
export class IdbBatchStore {
  readonly #store: UseStore | null;

  constructor() {
    this.#store = typeof indexedDB === 'undefined' ? null : createStore('dfs-batches', 'batches');
  }

  async save(record: BatchRecord): Promise<void> {
    if (this.#store) await set(record.id, { ...record, savedAt: Date.now() }, this.#store);
  }

  async delete(id: string): Promise<void> {
    if (this.#store) await del(id, this.#store);
  }

  async list(userId: string): Promise<BatchRecord[]> {
    if (!this.#store) return [];
    const all = await entries<string, BatchRecord>(this.#store);
    const out: BatchRecord[] = [];
    for (const [id, r] of all) {
      if (Date.now() - r.savedAt > MAX_AGE_MS) await del(id, this.#store);
      else if (r.userId === userId) out.push(r);
    }
    return out.sort((a, b) => a.startedAt - b.startedAt);
  }
}

export const batchStore = new IdbBatchStore();
