import {
  type FileEntry,
  type FileList,
  type ListFilesQuery,
  MAX_PAGE_SIZE,
  type SortField,
  type SortOrder,
} from '@dfs/shared';
import { type InfiniteData, useInfiniteQuery } from '@tanstack/vue-query';
import { computed, type Ref, ref, watch } from 'vue';
import { api } from '../api/index.ts';
import { queryClient, queryKeys } from '../api/query.ts';
import { rememberFolder } from './folder-path.ts';

/** The first page is small so the table shows at once; the rest follows in the largest pages. */
const FIRST_PAGE = 300;
const PAGE = MAX_PAGE_SIZE;

type Pages = InfiniteData<FileList, number>;

/**
 * One folder's listing (or a whole-tree search), sorted by the server and fetched with
 * limit/offset paging through the query cache: every page is fetched, one after another, and the
 * table virtualises rows, so 10,000 entries stay smooth. Going back to a folder shows the cached
 * listing at once while it is checked again.
 */
export function useFileList(folderId: Ref<string | null>, q: Ref<string>) {
  const sort = ref<SortField>('name');
  const order = ref<SortOrder>('asc');
  const searching = computed(() => q.value.trim().length > 0);

  const base = computed<ListFilesQuery>(() =>
    searching.value
      ? { q: q.value.trim(), sort: sort.value, order: order.value }
      : { ...(folderId.value ? { parentId: folderId.value } : {}), sort: sort.value, order: order.value },
  );
  const key = computed(() =>
    searching.value
      ? ([...queryKeys.search, q.value.trim(), sort.value, order.value] as const)
      : ([...queryKeys.folder(folderId.value), sort.value, order.value] as const),
  );

  const query = useInfiniteQuery(
    {
      queryKey: key,
      queryFn: ({ pageParam, signal }) =>
        api.listFiles(
          { ...base.value, limit: pageParam === 0 ? FIRST_PAGE : PAGE, offset: pageParam },
          { signal },
        ),
      initialPageParam: 0,
      getNextPageParam: (last, pages) => {
        const loaded = pages.reduce((n, p) => n + p.items.length, 0);
        return last.items.length > 0 && loaded < last.total ? loaded : undefined;
      },
    },
    queryClient,
  );

  // The table wants the whole listing: keep fetching pages until there are no more.
  watch(
    [query.hasNextPage, query.isFetching],
    ([more, fetching]) => {
      if (more && !fetching) void query.fetchNextPage();
    },
    { immediate: true },
  );

  const items = computed<FileEntry[]>(() => query.data.value?.pages.flatMap((p) => p.items) ?? []);
  const total = computed(() => query.data.value?.pages.at(-1)?.total ?? 0);
  watch(items, (all) => {
    for (const f of all) rememberFolder(f);
  });

  /** Local edits show at once, without waiting for (or re-fetching) a 10,000-row listing. */
  function edit(change: (pages: Pages) => Pages): void {
    queryClient.setQueryData<Pages>(key.value, (old) => (old ? change(old) : old));
  }
  function patchLocal(updated: FileEntry): void {
    edit((old) => ({
      ...old,
      pages: old.pages.map((p) => ({ ...p, items: p.items.map((f) => (f.id === updated.id ? updated : f)) })),
    }));
  }
  function removeLocal(ids: Iterable<string>): void {
    const gone = new Set(ids);
    edit((old) => {
      const removed = old.pages.reduce((n, p) => n + p.items.filter((f) => gone.has(f.id)).length, 0);
      return {
        ...old,
        pages: old.pages.map((p) => ({
          ...p,
          items: p.items.filter((f) => !gone.has(f.id)),
          total: Math.max(0, p.total - removed),
        })),
      };
    });
  }

  return {
    items,
    total,
    /** True only before the first page of this listing is there (not while re-checking it). */
    loading: query.isPending,
    loadingMore: computed(() => query.hasNextPage.value === true || query.isFetchingNextPage.value),
    error: query.error,
    sort,
    order,
    searching,
    load: () => query.refetch(),
    patchLocal,
    removeLocal,
  };
}
