import type { FastifyBaseLogger } from 'fastify';
import type { ContentRow } from '../repositories/contents.ts';
import type { Repositories } from '../repositories/index.ts';
import type { ClusterView, StorageCluster } from '../services/cluster.ts';
import type { Metrics } from '../services/operations/metrics.ts';
import { replicate } from '../services/replica-copies.ts';
import { objectKey } from '../storage/types.ts';
import type { Job } from './runner.ts';

export interface ClusterJobDeps {
  repos: Repositories;
  cluster: StorageCluster;
  log: FastifyBaseLogger;
  now: () => number;
  /** How long a down node's copies still count before repair replaces them. */
  repairGraceMs: number;
  /** Scrub read budget; 0 turns the scrub off. */
  scrubBytesPerSecond: number;
  /** Each replica is re-hashed about this often. */
  scrubPeriodMs: number;
  /** Progress counters for /metrics. */
  metrics?: Metrics;
}

export interface RepairOptions {
  /** Stop starting work on new contents after this long (the job's lease must outlast a run). */
  budgetMs?: number;
}

export interface RepairReport {
  /** Contents looked at. */
  checked: number;
  /** Copies made. */
  copied: number;
  /** Replica rows dropped (bad copies, copies on drained or removed nodes). */
  removed: number;
  /** Copies that failed (the next run tries again). */
  failed: number;
  /** Contents still short of copies after this run (no source, or no node to put them on). */
  short: number;
  /** The run stopped at its time budget with contents left to look at. */
  more?: boolean;
}

const REPAIR_EVERY_MS = 60_000;
/** Well inside the lease JobRunner takes (twice the interval). */
const REPAIR_BUDGET_MS = 90_000;
const PAGE = 100;
const REPAIR_PARALLEL = 4;

/**
 * Restores the wanted number of copies. A content needs repair when fewer of its `ok` replicas sit
 * on counting nodes (configured, not draining, up or down for less than the grace period) than
 * wanted, or when it has replicas that must go: missing, corrupt, on a draining node, or on a node
 * that left DFS_NODES. Runs through JobRunner, so one app instance at a time does it.
 */
export function repairJob(deps: ClusterJobDeps): Job {
  return {
    name: 'repair',
    everyMs: REPAIR_EVERY_MS,
    run: async () => ((await repair(deps, { budgetMs: REPAIR_BUDGET_MS })).more ? 'more' : undefined),
  };
}

export async function repair(deps: ClusterJobDeps, options: RepairOptions = {}): Promise<RepairReport> {
  const report: RepairReport = { checked: 0, copied: 0, removed: 0, failed: 0, short: 0 };
  const deadline = performance.now() + (options.budgetMs ?? Number.POSITIVE_INFINITY);
  let after = '';
  for (;;) {
    const view = deps.cluster.view(deps.repairGraceMs);
    if (view.wanted === 0) {
      deps.log.warn('repair: no writable storage node');
      break;
    }
    const page = await deps.repos.contents.listNeedingRepair({
      countingIds: view.countingIds,
      memberIds: view.memberIds,
      drainingIds: view.drainingIds,
      wanted: view.wanted,
      after,
      limit: PAGE,
    });
    // Contents are independent: a few at once keep both the source and the target node busy
    // (a migration is this loop), without flooding either.
    let next = 0;
    let outOfTime = false;
    const worker = async () => {
      while (next < page.length) {
        if (performance.now() > deadline) {
          outOfTime = true;
          return;
        }
        const content = page[next++] as ContentRow;
        await repairContent(deps, content, view, report);
      }
    };
    await Promise.all(Array.from({ length: REPAIR_PARALLEL }, worker));
    if (outOfTime) return finish(deps, { ...report, more: true });
    const last = page.at(-1);
    if (!last || page.length < PAGE) break;
    after = last.id;
  }
  return finish(deps, report);
}

/** Repairs the given contents now (the scrub calls it for the copies it found bad). */
export async function repairContents(deps: ClusterJobDeps, contentIds: string[]): Promise<RepairReport> {
  const report: RepairReport = { checked: 0, copied: 0, removed: 0, failed: 0, short: 0 };
  for (const id of new Set(contentIds)) {
    const content = await deps.repos.contents.findById(id);
    const view = deps.cluster.view(deps.repairGraceMs);
    if (content?.state === 'ready' && view.wanted > 0) await repairContent(deps, content, view, report);
  }
  return report;
}

function finish(deps: ClusterJobDeps, report: RepairReport): RepairReport {
  deps.metrics?.repairFinished();
  if (report.copied + report.removed + report.failed + report.short > 0)
    deps.log.info({ ...report }, 'repair');
  return report;
}

async function repairContent(
  deps: ClusterJobDeps,
  content: ContentRow,
  view: ClusterView,
  report: RepairReport,
): Promise<void> {
  const { cluster, repos } = deps;
  report.checked++;
  const counting = new Set(view.countingIds);
  const healthyNodes = new Set(view.healthyIds);
  const written = new Set<string>();
  const tried = new Set<string>();
  const countedOn = (rows: Array<{ node_id: string; state: string }>) =>
    new Set(
      rows
        .filter((r) => r.state === 'ok' && (counting.has(r.node_id) || written.has(r.node_id)))
        .map((r) => r.node_id),
    );

  // 1. Copies, onto writable nodes in placement order, from any readable `ok` replica (a draining
  //    node is a fine source), each verified against the content's SHA-1 before it is published.
  //    A copy can unmask a damaged source (marked as it is found), so the rows are read again and
  //    the count redone until it holds or nothing more can be done.
  let rows = await repos.contents.replicasOf(content.id);
  let counted = countedOn(rows);
  while (counted.size < view.wanted) {
    const target = cluster
      .placement(content.sha1, Number(content.size))
      .find((node) => !counted.has(node.id) && !tried.has(node.id));
    if (!target) break;
    tried.add(target.id);
    const sources = rows.filter((r) => r.state === 'ok').map((r) => r.node_id);
    const result = await replicate(cluster, content, sources, target.id);
    if (result.status === 'no_source') {
      deps.log.error({ sha1: content.sha1 }, 'repair: no readable healthy copy of this content is left');
      break;
    }
    if (result.status === 'target_failed') {
      report.failed++;
      deps.log.warn(
        { node: target.driver.name, sha1: content.sha1, err: result.error },
        'repair copy failed',
      );
    } else if (await repos.contents.recordReplica(content.id, target.id, deps.now())) {
      report.copied++;
      deps.metrics?.repairCopied(Number(content.size));
      written.add(target.id);
    } else {
      // The collector took the content meanwhile: our copy would be an orphan (unless the same
      // bytes were uploaded again since, under the same content-addressed key).
      if ((await repos.contents.findBySha1(content.sha1))?.state !== 'ready') {
        await target.driver.delete(objectKey(content.sha1)).catch(() => undefined);
      }
      return;
    }
    rows = await repos.contents.replicasOf(content.id);
    counted = countedOn(rows);
  }
  if (counted.size < view.wanted) report.short++;

  // 2. Clean-up. Bad rows go once the content is back to the wanted copies. Copies on a draining
  //    or removed node go only once DFS_REPLICAS healthy copies exist elsewhere: leaving must never
  //    lower the redundancy.
  const healthy = rows.filter(
    (r) => r.state === 'ok' && (healthyNodes.has(r.node_id) || written.has(r.node_id)),
  ).length;
  for (const replica of rows) {
    const member = cluster.driver(replica.node_id);
    const leaving = !member || cluster.isDraining(replica.node_id);
    if (replica.state === 'ok' && !leaving) continue;
    if (leaving ? healthy < view.replicas : counted.size < view.wanted) continue;
    if (member && replica.state !== 'missing') {
      // A node that is down keeps the row, so the object is deleted once it is back.
      if (!cluster.isUp(replica.node_id)) continue;
      try {
        await member.delete(objectKey(content.sha1));
      } catch (error) {
        deps.log.warn(
          { node: member.name, sha1: content.sha1, err: error },
          'repair: could not delete a copy',
        );
        continue;
      }
    }
    await repos.contents.removeReplica(content.id, replica.node_id);
    report.removed++;
  }
}
