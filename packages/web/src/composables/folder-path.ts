import type { FileEntry } from '@dfs/shared';
import { type Ref, ref, watch } from 'vue';
import { api } from '../api/index.ts';

// Folder rows change rarely; caching them keeps breadcrumbs instant when walking up and down.
const cache = new Map<string, FileEntry>();

export function rememberFolder(f: FileEntry): void {
  if (f.kind === 'folder') cache.set(f.id, f);
}
export function forgetFolder(id: string): void {
  cache.delete(id);
}

/**
 * The chain of folders from the root to `folderId` (the API has no "ancestors" route, so the
 * chain is walked up through GET /api/files/:id, one request per uncached level).
 */
export function useFolderPath(folderId: Ref<string | null>) {
  const chain = ref<FileEntry[]>([]);
  const error = ref<unknown>(null);
  let token = 0;

  async function resolve(id: string | null): Promise<void> {
    const mine = ++token;
    error.value = null;
    const out: FileEntry[] = [];
    try {
      for (let cur = id, guard = 0; cur && guard < 256; guard++) {
        let f = cache.get(cur);
        if (!f) {
          f = (await api.getFile(cur)).file;
          rememberFolder(f);
        }
        out.unshift(f);
        cur = f.parentId;
      }
      if (mine === token) chain.value = out;
    } catch (err) {
      if (mine === token) {
        chain.value = [];
        error.value = err;
      }
    }
  }

  watch(folderId, (id) => void resolve(id), { immediate: true });
  return { chain, error };
}
