import type { HistoryEvent, HistoryPage } from '@dfs/shared';
import { useInfiniteQuery } from '@tanstack/vue-query';
import { computed, type Ref } from 'vue';
import { api } from '../api/index.ts';
import { queryClient, queryKeys } from '../api/query.ts';

/** Events per page: a screenful and some, so "Load more" is rarely needed for a quick look. */
export const HISTORY_PAGE = 50;

/**
 * The activity list of a folder's subtree (null: the whole account), newest first, a page at a
 * time through the query cache; `enabled` keeps it from loading while its panel is closed.
 */
export function useHistory(folderId: Ref<string | null>, enabled: Ref<boolean>) {
  const query = useInfiniteQuery(
    {
      queryKey: computed(() => queryKeys.folderHistory(folderId.value)),
      queryFn: ({ pageParam, signal }): Promise<HistoryPage> =>
        api.history(
          {
            ...(folderId.value ? { folderId: folderId.value } : {}),
            ...(pageParam ? { cursor: pageParam } : {}),
            limit: HISTORY_PAGE,
          },
          { signal },
        ),
      initialPageParam: null as string | null,
      getNextPageParam: (last) => last.nextCursor,
      enabled,
      // Other devices and programs change files all the time: fresh whenever the panel opens.
      staleTime: 0,
    },
    queryClient,
  );
  return {
    events: computed<HistoryEvent[]>(() => query.data.value?.pages.flatMap((p) => p.items) ?? []),
    loading: query.isPending,
    error: query.error,
    hasMore: computed(() => query.hasNextPage.value === true),
    loadingMore: query.isFetchingNextPage,
    loadMore: () => query.fetchNextPage(),
    reload: () => query.refetch(),
  };
}

/**
 * Where an event happened, as the list shows it: both places for a rename or a move ("from" and
 * "to"), the one place otherwise (a trashed or purged entry has only where it was).
 */
export function eventPlaces(ev: HistoryEvent): { from: string | null; to: string | null } {
  if (ev.oldPath && ev.path && ev.oldPath !== ev.path) return { from: ev.oldPath, to: ev.path };
  return { from: null, to: ev.path ?? ev.oldPath };
}

/** Just before an event: restoring to this time undoes it and everything after it. */
export function justBefore(iso: string): string {
  return new Date(Date.parse(iso) - 1).toISOString();
}
