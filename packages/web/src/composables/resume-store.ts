import type { ResumeEntry, ResumeStore } from '@dfs/client';
import { createStore, del, entries, get, set, type UseStore } from 'idb-keyval';

/** Entries older than the server's default upload expiry (24 h) point at swept sessions. */
const MAX_AGE_MS = 7 * 24 * 3600 * 1000;

/**
 * The client core's `ResumeStore` in IndexedDB: fingerprint (name + size + lastModified) →
 * {sha1, uploadId}. It survives reloads and browser restarts; the server stays the authority
 * on which chunks it holds, so a stale entry costs at most one lookup.
 */
export class IdbResumeStore implements ResumeStore {
  readonly #store: UseStore | null;

  constructor() {
    // IndexedDB can be missing (some private modes): uploads still work, they just don't resume.
    this.#store = typeof indexedDB === 'undefined' ? null : createStore('dfs', 'resume');
  }

  async get(fingerprint: string): Promise<ResumeEntry | null> {
    if (!this.#store) return null;
    const entry = await get<ResumeEntry>(fingerprint, this.#store);
    if (entry?.savedAt && Date.now() - entry.savedAt > MAX_AGE_MS) {
      await del(fingerprint, this.#store);
      return null;
    }
    return entry ?? null;
  }

  async set(fingerprint: string, entry: ResumeEntry): Promise<void> {
    if (this.#store) await set(fingerprint, entry, this.#store);
  }

  async delete(fingerprint: string): Promise<void> {
    if (this.#store) await del(fingerprint, this.#store);
  }

  /** Every remembered unfinished upload (for the "select these files again" notice). */
  async list(): Promise<{ fingerprint: string; entry: ResumeEntry }[]> {
    if (!this.#store) return [];
    const all = await entries<string, ResumeEntry>(this.#store);
    return all
      .filter(([, e]) => !(e.savedAt && Date.now() - e.savedAt > MAX_AGE_MS))
      .map(([fingerprint, entry]) => ({ fingerprint, entry }));
  }
}

export const resumeStore = new IdbResumeStore();
