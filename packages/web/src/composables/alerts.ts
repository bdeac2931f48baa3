import type { Actor, Alert } from '@dfs/shared';
import { useQuery } from '@tanstack/vue-query';
import { computed, type Ref } from 'vue';
import { api } from '../api/index.ts';
import { queryClient, queryKeys } from '../api/query.ts';
import { i18n } from '../i18n/index.ts';
import { actorLabel } from './versions.ts';

/** How often the app asks whether something changed many files (the server notices within a change). */
export const ALERTS_POLL_MS = 30_000;

/** The owner's alerts, checked on load, every ALERTS_POLL_MS while the tab is visible, and on demand. */
export function useAlerts(enabled: Ref<boolean>) {
  const query = useQuery(
    {
      queryKey: queryKeys.alerts,
      queryFn: ({ signal }) => api.alerts({ signal }),
      enabled,
      refetchInterval: ALERTS_POLL_MS,
      staleTime: 0,
    },
    queryClient,
  );
  return {
    alerts: computed<Alert[]>(() => query.data.value?.items ?? []),
    refresh: () => void queryClient.invalidateQueries({ queryKey: queryKeys.alerts }),
  };
}

/** Drops an alert from the cached list at once (dismissed), before the server is asked again. */
export function forgetAlert(id: string): void {
  queryClient.setQueryData<{ items: Alert[] }>(queryKeys.alerts, (old) =>
    old ? { items: old.items.filter((a) => a.id !== id) } : old,
  );
}

/** Who made the changes, as the alert's sentence starts: an app password by its name and door. */
export function alertActor(actor: Actor): string {
  if (actor.type === 'session' && (!actor.via || actor.via === 'api')) return i18n.global.t('alerts.session');
  return actorLabel(actor);
}

/** The alert's folder as the user reads it: "My files" for the whole account. */
export function alertFolder(alert: Alert): string {
  return alert.folderId === null || alert.folderPath === '/' ? i18n.global.t('files.root') : alert.folderPath;
}
