import { isRestoreStarted, type RestoreAnswer } from '@dfs/client';
import type { RestoreResult } from '@dfs/shared';
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import { api } from '../api/index.ts';
import { invalidateAfterRestore } from '../api/query.ts';
import { errorText } from '../composables/errors.ts';
import { forgetAllFolders } from '../composables/folder-path.ts';

/** What is shown of the last restore: its folder and time, and how far it got. */
export interface RestoreRun {
  /** The folder's name or path as the user knows it ("/" or null: the whole account). */
  folder: string | null;
  /** The time it is put back to (ISO). */
  at: string;
  state: 'running' | 'done' | 'failed';
  /** Entries handled so far of all; both 0 until a job reports them (or when it answered at once). */
  done: number;
  total: number;
  result: RestoreResult | null;
  /** Why it failed, in the UI language. */
  error: string | null;
}

/**
 * Point-in-time restores (from the activity list, or an alert's undo). One runs at a time: its
 * progress and its counts are shown in the app shell, wherever the user goes meanwhile, and every
 * cached listing is refreshed when it ends.
 */
export const useRestoreStore = defineStore('restore', () => {
  const run = ref<RestoreRun | null>(null);
  const running = computed(() => run.value?.state === 'running');
  /** Counts the restores that ended: what shows the tree (breadcrumbs) watches it to ask again. */
  const ended = ref(0);

  /**
   * Starts a restore through `start` (POST /api/restore or an alert's undo) and follows it to
   * the end. Resolves with the counts, or null when it failed (the error is in `run`).
   */
  async function follow(
    start: () => Promise<RestoreAnswer>,
    what: { folder: string | null; at: string },
  ): Promise<RestoreResult | null> {
    run.value = { ...what, state: 'running', done: 0, total: 0, result: null, error: null };
    // A fresh object each time: a later restore must not write into an earlier one's record.
    const current = run.value;
    try {
      const answer = await start();
      let result: RestoreResult | null;
      if (isRestoreStarted(answer)) {
        const job = await api.waitForJob(answer.jobId, {
          intervalMs: 700,
          onProgress: (j) => {
            current.done = j.progress.done;
            current.total = j.progress.total;
          },
        });
        if (job.state === 'failed' || !job.result) throw new Error(job.error ?? 'the restore job failed');
        result = job.result;
      } else {
        result = answer;
      }
      Object.assign(current, { state: 'done', result });
      return result;
    } catch (err) {
      Object.assign(current, { state: 'failed', error: errorText(err) });
      return null;
    } finally {
      // Even a failed restore may have put some entries back before it stopped.
      forgetAllFolders();
      invalidateAfterRestore();
      ended.value++;
    }
  }

  function clear(): void {
    if (!running.value) run.value = null;
  }

  return { run, running, ended, follow, clear };
});
