import { setTimeout as sleep } from 'node:timers/promises';
import { verifyReplica } from '../services/replica-copies.ts';
import { type ClusterJobDeps, type RepairReport, repairContents } from './repair.ts';
import type { Job } from './runner.ts';

export interface ScrubOptions {
  /** Stop starting new replicas after this long. */
  budgetMs?: number;
  /** Overrides the configured read budget. */
  bytesPerSecond?: number;
}

export interface ScrubReport {
  /** Replicas re-hashed (or found missing). */
  checked: number;
  bytes: number;
  missing: number;
  corrupt: number;
  /** Replicas on nodes that failed while being read; the next run tries again. */
  skipped: number;
  repair: RepairReport;
}

const SCRUB_EVERY_MS = 15 * 60_000;
/** Inside JobRunner's lease of twice the interval. */
const SCRUB_BUDGET_MS = 10 * 60_000;
const PAGE = 100;

/**
 * Bit rot is found only by reading: the scrub re-hashes every replica about once per
 * DFS_SCRUB_PERIOD_DAYS, least recently verified first, within a bytes-per-second budget so it
 * never competes with clients for the disks. A copy whose SHA-1 or size is wrong is marked
 * `corrupt`, a vanished one `missing`, and both are repaired at once from a good replica.
 */
export function scrubJob(deps: ClusterJobDeps): Job {
  return {
    name: 'scrub',
    everyMs: SCRUB_EVERY_MS,
    run: async () => {
      if (deps.scrubBytesPerSecond > 0) await scrub(deps, { budgetMs: SCRUB_BUDGET_MS });
    },
  };
}

export async function scrub(deps: ClusterJobDeps, options: ScrubOptions = {}): Promise<ScrubReport> {
  const report: ScrubReport = {
    checked: 0,
    bytes: 0,
    missing: 0,
    corrupt: 0,
    skipped: 0,
    repair: { checked: 0, copied: 0, removed: 0, failed: 0, short: 0 },
  };
  const rate = options.bytesPerSecond ?? deps.scrubBytesPerSecond;
  if (rate <= 0) return report;
  const deadline = performance.now() + (options.budgetMs ?? Number.POSITIVE_INFINITY);
  const pace = pacer(rate);
  // Replicas verified during this run are newer than the cutoff, so a run never loops on them.
  const before = deps.now() - deps.scrubPeriodMs;
  const damaged: string[] = [];
  let after = { contentId: '', nodeId: '' };
  scan: for (;;) {
    const page = await deps.repos.contents.listReplicasToVerify({
      nodeIds: deps.cluster.liveNodeIds(),
      before,
      after,
      limit: PAGE,
    });
    for (const replica of page) {
      if (performance.now() > deadline) break scan;
      after = { contentId: replica.content_id, nodeId: replica.node_id };
      const content = { id: replica.content_id, sha1: replica.sha1, size: replica.size };
      const result = await verifyReplica(
        deps.cluster,
        deps.repos,
        content,
        replica.node_id,
        async (bytes) => {
          report.bytes += bytes;
          await pace(bytes);
        },
      );
      if (result === 'unavailable') {
        report.skipped++;
        continue;
      }
      report.checked++;
      if (result === 'ok') {
        await deps.repos.contents.markVerified(replica.content_id, replica.node_id, deps.now());
        continue;
      }
      report[result]++;
      deps.log.warn(
        { node: deps.cluster.driver(replica.node_id)?.name, sha1: replica.sha1, state: result },
        'scrub found a bad replica',
      );
      await deps.repos.contents.setReplicaState(replica.content_id, replica.node_id, result, deps.now());
      damaged.push(replica.content_id);
    }
    if (page.length < PAGE) break;
  }
  if (damaged.length > 0) report.repair = await repairContents(deps, damaged);
  if (report.checked > 0) deps.log.info({ ...report }, 'scrub');
  return report;
}

/** Waits as needed so that the bytes passed in never run ahead of `bytesPerSecond`. */
function pacer(bytesPerSecond: number): (bytes: number) => Promise<void> {
  const started = performance.now();
  let total = 0;
  return async (bytes) => {
    total += bytes;
    const due = started + (total / bytesPerSecond) * 1000;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
  };
}
