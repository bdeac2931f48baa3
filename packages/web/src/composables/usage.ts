import { useQuery } from '@tanstack/vue-query';
import { computed } from 'vue';
import { api } from '../api/index.ts';
import { queryClient, queryKeys } from '../api/query.ts';

/** What the signed-in user stores (trash included) against their quota, if they have one. */
export function useUsage() {
  const query = useQuery(
    {
      queryKey: queryKeys.usage,
      queryFn: async ({ signal }) => (await api.me({ signal })).usage ?? null,
      staleTime: 30_000,
    },
    queryClient,
  );
  const usage = computed(() => query.data.value ?? null);
  /** 0–100, or null without a quota. */
  const percent = computed(() => {
    const u = usage.value;
    if (!u?.quotaBytes) return null;
    return Math.min(100, Math.round((u.usedBytes / u.quotaBytes) * 1000) / 10);
  });
  return { usage, percent };
}
