import type { FastifyBaseLogger } from 'fastify';
import type { ContentPresence } from '../repositories/contents.ts';
import type { Repositories } from '../repositories/index.ts';
import type { StorageCluster } from '../services/cluster.ts';
import { verifyReplica } from '../services/replica-copies.ts';
import { type ObjectEntry, objectKey, type StorageNode } from '../storage/types.ts';
import type { Job } from './runner.ts';

export interface ReconcileDeps {
  repos: Repositories;
  cluster: StorageCluster;
  log: FastifyBaseLogger;
  now: () => number;
  /** DFS_GC_GRACE_SECONDS: a stray waits at least this long (and never less than MIN_AGE_MS). */
  gcGraceMs: number;
}

export interface ReconcileReport {
  /** Objects listed on the nodes. */
  listed: number;
  /** Objects past the grace period with no replica row for their node. */
  strays: number;
  /** Strays removed: no content row, a content being deleted, or bytes that fail its hash. */
  deleted: number;
  /** Strays whose bytes verified against their content, recorded as its replica on that node. */
  adopted: number;
  /** Nodes that failed while being listed; the next run tries them again. */
  failedNodes: number;
}

/**
 * An upload publishes its objects before their rows commit, and when a node fails mid-write the
 * replacement copy is written (the whole file, however large) before anything commits: objects
 * younger than this may still be on their way to a row, whatever the GC grace says.
 */
const MIN_AGE_MS = 6 * 3600_000;
const RECONCILE_EVERY_MS = 6 * 3600_000;
/** After start, once the heartbeat has seen the nodes (when no instance reconciled for 6 hours). */
const RECONCILE_AFTER_START_MS = 5 * 60_000;
const BATCH = 500;
const OBJECT_KEY = /^objects\/[0-9a-f]{2}\/[0-9a-f]{2}\/([0-9a-f]{40})$/;

/**
 * Nothing else lists a node's objects, so an object whose row never committed (a crash or a
 * database failure between a node's rename and the content's transaction) would stay forever.
 * Each run lists every up node and settles each object older than the grace period that no
 * replica row places there:
 * - its content is ready and the bytes verify: adopted as a replica (a copy is worth keeping);
 * - no content row, a content being deleted, or bytes that fail the hash: deleted.
 * An object with a replica row on its node (ok, missing or corrupt) is never touched here: repair
 * owns those. Keys outside `objects/ab/cd/<sha1>` are left alone, and tmp files are the sweep's.
 */
export function reconcileJob(deps: ReconcileDeps): Job {
  return {
    name: 'reconcile',
    everyMs: RECONCILE_EVERY_MS,
    firstRunAfterMs: RECONCILE_AFTER_START_MS,
    run: () => reconcile(deps).then(() => undefined),
  };
}

export async function reconcile(deps: ReconcileDeps): Promise<ReconcileReport> {
  const report: ReconcileReport = { listed: 0, strays: 0, deleted: 0, adopted: 0, failedNodes: 0 };
  const cutoff = deps.now() - Math.max(deps.gcGraceMs, MIN_AGE_MS);
  for (const nodeId of deps.cluster.liveNodeIds()) {
    const driver = deps.cluster.driver(nodeId);
    if (!driver) continue;
    try {
      let batch: Candidate[] = [];
      for await (const entry of driver.list('objects')) {
        report.listed++;
        const sha1 = OBJECT_KEY.exec(entry.key)?.[1];
        if (!sha1 || entry.mtimeMs > cutoff) continue;
        batch.push({ sha1, entry });
        if (batch.length >= BATCH) {
          await settle(deps, nodeId, driver, batch, cutoff, report);
          batch = [];
        }
      }
      await settle(deps, nodeId, driver, batch, cutoff, report);
    } catch (error) {
      report.failedNodes++;
      deps.log.warn({ err: error, node: driver.name }, 'reconcile: could not list the node');
    }
  }
  if (report.strays > 0 || report.failedNodes > 0) deps.log.info({ ...report }, 'reconcile');
  return report;
}

interface Candidate {
  sha1: string;
  entry: ObjectEntry;
}

async function settle(
  deps: ReconcileDeps,
  nodeId: string,
  driver: StorageNode,
  batch: Candidate[],
  cutoff: number,
  report: ReconcileReport,
): Promise<void> {
  const presence = await deps.repos.contents.presenceOn(
    nodeId,
    batch.map((c) => c.sha1),
  );
  for (const candidate of batch) {
    const content = presence.get(candidate.sha1);
    if (content?.onNode) continue;
    report.strays++;
    if (content?.state === 'ready' && content.size === candidate.entry.size) {
      const outcome = await adopt(deps, nodeId, candidate.sha1, content);
      if (outcome === 'adopted') {
        report.adopted++;
        continue;
      }
      if (outcome === 'leave') continue;
    }
    if (await remove(deps, nodeId, driver, candidate, cutoff)) report.deleted++;
  }
}

/** Verifies a stray against its content and records it; 'leave' when the node could not say. */
async function adopt(
  deps: ReconcileDeps,
  nodeId: string,
  sha1: string,
  content: ContentPresence,
): Promise<'adopted' | 'delete' | 'leave'> {
  const result = await verifyReplica(
    deps.cluster,
    deps.repos,
    { id: content.id, sha1, size: content.size },
    nodeId,
  );
  if (result === 'unavailable' || result === 'missing') return 'leave';
  if (result === 'corrupt') return 'delete';
  // False when the collector took the content meanwhile: the copy is then as good as orphaned.
  return (await deps.repos.contents.recordReplica(content.id, nodeId, deps.now())) ? 'adopted' : 'delete';
}

async function remove(
  deps: ReconcileDeps,
  nodeId: string,
  driver: StorageNode,
  { sha1, entry }: Candidate,
  cutoff: number,
): Promise<boolean> {
  // Looked at again right before the delete: an upload of the same bytes may have put a fresh
  // object under the key (new mtime) or committed its row since the batch was read.
  const again = (await deps.repos.contents.presenceOn(nodeId, [sha1])).get(sha1);
  if (again?.onNode) return false;
  const dir = entry.key.slice(0, entry.key.lastIndexOf('/'));
  let current: ObjectEntry | undefined;
  for await (const listed of driver.list(dir)) if (listed.key === entry.key) current = listed;
  if (!current || current.mtimeMs > cutoff) return false;
  await driver.delete(objectKey(sha1));
  deps.log.warn({ node: driver.name, sha1, size: entry.size }, 'reconcile: deleted an unregistered object');
  // A row that committed in the last instant points at a copy that is now gone: say so, and
  // repair restores it from another replica.
  const after = (await deps.repos.contents.presenceOn(nodeId, [sha1])).get(sha1);
  if (after?.onNode) await deps.repos.contents.setReplicaState(after.id, nodeId, 'missing', deps.now());
  return true;
}
