import { setTimeout as sleep } from 'node:timers/promises';
import { ACCEL_VERIFIED_MS } from '../services/cluster.ts';
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
 * never competes with clients for the disks. Copies that nginx serves unchecked come first, every
 * half ACCEL_VERIFIED_MS. A copy whose SHA-1 or size is wrong is marked
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
  const damaged: string[] = [];
  const live = deps.cluster.liveNodeIds();
  // Copies nginx serves (DFS_ACCEL_REDIRECT) first, at half the age after which they stop being
  // served that way: a copy that keeps verifying keeps its downloads off the app.
  const accel = deps.cluster.accelNodeIds().filter((id) => live.includes(id));
  if (accel.length > 0) {
    await scan(deps, report, accel, deps.now() - ACCEL_VERIFIED_MS / 2, deadline, pace, damaged);
  }
  await scan(deps, report, live, deps.now() - deps.scrubPeriodMs, deadline, pace, damaged);
  if (damaged.length > 0) report.repair = await repairContents(deps, damaged);
  deps.metrics?.scrubDone(report.checked, report.bytes, report.missing + report.corrupt);
  if (report.checked > 0) deps.log.info({ ...report }, 'scrub');
  return report;
}

/**
 * Re-hashes the replicas on `nodeIds` last verified before `before`, least recently verified
 * first, until the deadline. Replicas verified during the scan are newer than the cutoff, so it
 * never loops on them.
 */
async function scan(
  deps: ClusterJobDeps,
  report: ScrubReport,
  nodeIds: string[],
  before: number,
  deadline: number,
  pace: (bytes: number) => Promise<void>,
  damaged: string[],
): Promise<void> {
  let after = { contentId: '', nodeId: '' };
  for (;;) {
    const page = await deps.repos.contents.listReplicasToVerify({ nodeIds, before, after, limit: PAGE });
    for (const replica of page) {
      if (performance.now() > deadline) return;
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
    if (page.length < PAGE) return;
  }
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
