import { QueryClient } from '@tanstack/vue-query';

/**
 * The app's one query cache. Composables pass it explicitly rather than inject it, so they work
 * outside components too (unit tests run them in an effect scope).
 */
export const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // Lists change through this tab's own actions, which invalidate them; other tabs' changes
      // show on the next visit or focus.
      staleTime: 5_000,
      retry: 1,
      refetchOnWindowFocus: true,
    },
  },
});

/** Query keys, in one place so invalidation and reads agree. */
export const queryKeys = {
  /** Every listing and search: a prefix for "something in the tree changed". */
  files: ['files'] as const,
  folder: (folderId: string | null) => ['files', 'folder', folderId ?? 'root'] as const,
  search: ['files', 'search'] as const,
  trash: ['trash'] as const,
  shares: ['shares'] as const,
  nodes: ['nodes'] as const,
  usage: ['usage'] as const,
  users: ['admin', 'users'] as const,
  /** A file's versions (the details panel). */
  versions: (fileId: string) => ['versions', fileId] as const,
  /** The activity list of a folder's subtree (null: the whole account); a prefix for all of them. */
  history: ['history'] as const,
  folderHistory: (folderId: string | null) => ['history', folderId ?? 'root'] as const,
  alerts: ['alerts'] as const,
};

/** A file's content changed (replaced, restored): its list of versions is stale. */
export function invalidateVersions(fileId: string): void {
  void queryClient.invalidateQueries({ queryKey: queryKeys.versions(fileId) });
}

/** A folder's contents changed: its listings (any sort) and every search are stale. */
export function invalidateFolder(folderId: string | null): void {
  void queryClient.invalidateQueries({ queryKey: queryKeys.folder(folderId) });
  void queryClient.invalidateQueries({ queryKey: queryKeys.search });
  void queryClient.invalidateQueries({ queryKey: queryKeys.usage });
}

/**
 * A folder changed through an edit already applied to the listing on screen: its other cached
 * listings (other sort orders) and the trash are stale, but nothing needs refetching now.
 */
export function markStale(folderId: string | null): void {
  void queryClient.invalidateQueries({ queryKey: queryKeys.folder(folderId), refetchType: 'none' });
  void queryClient.invalidateQueries({ queryKey: queryKeys.search, refetchType: 'none' });
  void queryClient.invalidateQueries({ queryKey: queryKeys.trash });
  void queryClient.invalidateQueries({ queryKey: queryKeys.usage });
}

/**
 * A restore (or an alert's undo) may have changed anything below its folder: every listing,
 * version list, the trash, the usage and the activity lists are stale.
 */
export function invalidateAfterRestore(): void {
  for (const queryKey of [
    queryKeys.files,
    ['versions'],
    ['details'],
    queryKeys.trash,
    queryKeys.usage,
    queryKeys.history,
    queryKeys.alerts,
  ]) {
    void queryClient.invalidateQueries({ queryKey });
  }
}
