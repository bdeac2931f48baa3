import type { ResumeEntry, ResumeStore } from '@dfs/client';
import { createStore, del, entries, get, set, type UseStore } from 'idb-keyval';

/** A link's unfinished sessions are long swept after this (they expire a day after their last chunk). */
const MAX_AGE_MS = 7 * 24 * 3600 * 1000;

let shared: UseStore | null | undefined;
/** Apart from the signed-in app's store: its "continue these uploads" notice must not list drops. */
function store(): UseStore | null {
  shared ??= typeof indexedDB === 'undefined' ? null : createStore('dfs-drop', 'resume');
  return shared;
}

const fresh = (entry: ResumeEntry | undefined) =>
  entry !== undefined && !(entry.savedAt && Date.now() - entry.savedAt > MAX_AGE_MS);

/**
 * The upload engine's resume store for one upload request: fingerprint → {sha1, uploadId} under
 * the link's token, so a file dropped through two links resumes each on its own. After a reload
 * the visitor picks the same file again and only the chunks the server lacks are sent.
 */
export function dropResumeStore(token: string): ResumeStore & { names(): Promise<string[]> } {
  const key = (fingerprint: string) => `${token}\n${fingerprint}`;
  return {
    async get(fingerprint) {
      const s = store();
      if (!s) return null;
      const entry = await get<ResumeEntry>(key(fingerprint), s);
      return fresh(entry) ? (entry as ResumeEntry) : null;
    },
    async set(fingerprint, entry) {
      const s = store();
      if (s) await set(key(fingerprint), entry, s);
    },
    async delete(fingerprint) {
      const s = store();
      if (s) await del(key(fingerprint), s);
    },
    /** The names of this link's unfinished uploads, to ask for those files again. */
    async names() {
      const s = store();
      if (!s) return [];
      const all = await entries<string, ResumeEntry>(s);
      return all
        .filter(([k, entry]) => k.startsWith(`${token}\n`) && entry.uploadId && fresh(entry))
        .map(([, entry]) => entry.name);
    },
  };
}
