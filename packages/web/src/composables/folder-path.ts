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
/** After a restore any folder may have another name or place again. */
export function forgetAllFolders(): void {
  cache.clear();
}

/**
 * The chain of folders from the root to `folderId`: cached when every level is known, otherwise
 * one request (GET /api/files/:id/path) that also fills the cache.
 */
export function useFolderPath(folderId: Ref<string | null>) {
  const chain = ref<FileEntry[]>([]);
  const error = ref<unknown>(null);
  let token = 0;

  function fromCache(id: string): FileEntry[] | null {
    const out: FileEntry[] = [];
    for (let cur: string | null = id, guard = 0; cur && guard < 256; guard++) {
      const f = cache.get(cur);
      if (!f) return null;
      out.unshift(f);
      cur = f.parentId;
    }
    return out;
  }

  async function resolve(id: string | null): Promise<void> {
    const mine = ++token;
    error.value = null;
    try {
      let out = id ? fromCache(id) : [];
      if (!out && id) {
        out = (await api.filePath(id)).items;
        for (const f of out) rememberFolder(f);
      }
      if (mine === token) chain.value = out ?? [];
    } catch (err) {
      if (mine === token) {
        chain.value = [];
        error.value = err;
      }
    }
  }

  watch(folderId, (id) => void resolve(id), { immediate: true });
  /** Asks again (after forgetAllFolders): the folders above may have other names now. */
  const refresh = () => resolve(folderId.value);
  return { chain, error, refresh };
}
