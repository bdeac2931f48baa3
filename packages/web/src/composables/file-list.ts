import { isAbortError } from '@dfs/client';
import {
  type FileEntry,
  type ListFilesQuery,
  MAX_PAGE_SIZE,
  type SortField,
  type SortOrder,
} from '@dfs/shared';
import { computed, type Ref, ref, shallowRef, watch } from 'vue';
import { api } from '../api/index.ts';
import { rememberFolder } from './folder-path.ts';

/** The first page is small so the table shows at once; the rest follows in the largest pages. */
const FIRST_PAGE = 300;
const PAGE = MAX_PAGE_SIZE;

/**
 * One folder's listing (or a whole-tree search), sorted by the server and fetched with
 * limit/offset paging; the table virtualises rows, so 10,000 entries stay smooth.
 */
export function useFileList(folderId: Ref<string | null>, q: Ref<string>) {
  const items = shallowRef<FileEntry[]>([]);
  const total = ref(0);
  const loading = ref(false);
  const loadingMore = ref(false);
  const error = ref<unknown>(null);
  const sort = ref<SortField>('name');
  const order = ref<SortOrder>('asc');
  let ctl: AbortController | null = null;

  const searching = computed(() => q.value.trim().length > 0);

  async function load(): Promise<void> {
    ctl?.abort();
    const mine = new AbortController();
    ctl = mine;
    const base: ListFilesQuery = searching.value
      ? { q: q.value.trim(), sort: sort.value, order: order.value }
      : { ...(folderId.value ? { parentId: folderId.value } : {}), sort: sort.value, order: order.value };
    loading.value = true;
    error.value = null;
    try {
      const first = await api.listFiles({ ...base, limit: FIRST_PAGE, offset: 0 }, { signal: mine.signal });
      if (ctl !== mine) return;
      let all = first.items;
      items.value = all;
      total.value = first.total;
      loading.value = false;
      loadingMore.value = all.length < first.total;
      while (all.length < total.value && first.items.length > 0) {
        const page = await api.listFiles(
          { ...base, limit: PAGE, offset: all.length },
          { signal: mine.signal },
        );
        if (ctl !== mine) return;
        if (page.items.length === 0) break;
        all = all.concat(page.items);
        items.value = all;
        total.value = page.total;
      }
      for (const f of all) rememberFolder(f);
    } catch (err) {
      if (isAbortError(err) || ctl !== mine) return;
      error.value = err;
    } finally {
      if (ctl === mine) {
        loading.value = false;
        loadingMore.value = false;
      }
    }
  }

  /** Local edits show at once, without waiting for (or re-fetching) a 10,000-row listing. */
  function patchLocal(updated: FileEntry): void {
    items.value = items.value.map((f) => (f.id === updated.id ? updated : f));
  }
  function removeLocal(ids: Iterable<string>): void {
    const gone = new Set(ids);
    items.value = items.value.filter((f) => !gone.has(f.id));
    total.value = Math.max(0, total.value - gone.size);
  }

  watch([folderId, q, sort, order], () => void load(), { immediate: true });

  return { items, total, loading, loadingMore, error, sort, order, searching, load, patchLocal, removeLocal };
}
