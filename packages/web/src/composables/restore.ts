import type { RestoreAnswer } from '@dfs/client';
import type { RestoreResult } from '@dfs/shared';
import { useDialog } from 'naive-ui';
import { useI18n } from 'vue-i18n';
import { useRestoreStore } from '../stores/restore.ts';
import { formatDate } from './format.ts';

export interface RestorePlan {
  /** The folder's name or path as the user knows it; null: the whole account. */
  folder: string | null;
  /** The time it goes back to (ISO). */
  at: string;
  /** Sends the request: POST /api/restore, or an alert's undo. */
  start: () => Promise<RestoreAnswer>;
  /** The dialog's own title, when the plain "Restore … to …?" would say less (an alert's undo). */
  title?: string;
  /** Confirmed and sent: a panel over the page closes, so the progress and the listing show. */
  onStart?: () => void;
}

/**
 * Asks before a point-in-time restore, saying what it does (nothing is deleted; newer entries go
 * to the trash; every later change is undone, whoever made it), then runs it through the restore
 * store. Resolves with the counts, or null when cancelled or failed.
 */
export function useConfirmRestore() {
  const { t } = useI18n();
  const dialog = useDialog();
  const store = useRestoreStore();

  return (plan: RestorePlan): Promise<RestoreResult | null> =>
    new Promise((resolve) => {
      const folder = plan.folder ?? t('files.root');
      const time = formatDate(plan.at);
      let started = false;
      dialog.warning({
        title: plan.title ?? t('restore.confirmTitle', { folder, time }),
        content: t('restore.confirmText', { folder, time }),
        positiveText: t('restore.confirm'),
        negativeText: t('common.cancel'),
        positiveButtonProps: { 'data-testid': 'restore-confirm' } as object,
        onPositiveClick: () => {
          started = true;
          plan.onStart?.();
          // The dialog closes at once: the progress shows in the shell, not in a blocked dialog.
          void store.follow(plan.start, { folder, at: plan.at }).then(resolve);
        },
        onAfterLeave: () => {
          if (!started) resolve(null);
        },
      });
    });
}
