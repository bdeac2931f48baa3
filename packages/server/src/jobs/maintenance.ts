import type { FastifyBaseLogger } from 'fastify';
import type { Repositories } from '../repositories/index.ts';
import type { StorageCluster } from '../services/cluster.ts';
import type { Metrics } from '../services/operations/metrics.ts';
import { NC_SESSION_TTL_MS } from '../services/protocols/nextcloud-uploads.ts';
import { uploadOfPart } from '../services/tus.ts';
import { objectKey } from '../storage/types.ts';
import type { Job } from './runner.ts';

interface Deps {
  repos: Repositories;
  cluster: StorageCluster;
  log: FastifyBaseLogger;
  now: () => number;
  gcGraceMs: number;
  /** DFS_BACKUP_KEEP_DAYS: what a backup younger than this lists is not collected. */
  backupKeepMs?: number;
  /** Expired uploads count as failed uploads in /metrics. */
  metrics?: Metrics;
}

/** Tmp files younger than this may belong to a write in progress. */
const TMP_MIN_AGE_MS = 6 * 3600_000;

/**
 * Abandoned uploads must not fill disks (tusd #176, #435): expired sessions lose their part files
 * on every node, part files without a session go once they are old, and so do old tmp files.
 */
export function sweepJob(deps: Deps): Job {
  return {
    name: 'sweep',
    everyMs: 5 * 60_000,
    run: () => sweep(deps).then(() => undefined),
  };
}

export async function sweep(deps: Deps): Promise<{ uploads: number; strays: number }> {
  const now = deps.now();
  let uploads = 0;
  for (const upload of await deps.repos.uploads.listExpired(now, 500)) {
    const nodes = await deps.repos.uploads.nodes(upload.id);
    await deps.repos.uploads.delete(upload.id);
    for (const { node_id } of nodes) {
      await deps.cluster
        .driver(node_id)
        ?.deletePart(upload.id)
        // A node that is down keeps the part until the stray sweep below finds it.
        .catch((err) => deps.log.warn({ err, node_id }, 'could not delete an expired part yet'));
    }
    uploads++;
  }
  if (uploads > 0) deps.metrics?.uploadsFailed.inc({ reason: 'expired' }, uploads);
  await deps.repos.uploads.deleteCompletedBefore(now);
  let strays = 0;
  for (const nodeId of deps.cluster.liveNodeIds()) {
    const driver = deps.cluster.driver(nodeId);
    if (!driver) continue;
    try {
      await driver.sweepTmp(TMP_MIN_AGE_MS);
      // Read after listing, so an upload created meanwhile is known before its part is judged.
      const stale: string[] = [];
      for await (const part of driver.listParts()) {
        // Node clocks, not the app's (which tests move): a part is old by its own mtime.
        if (Date.now() - part.mtimeMs > TMP_MIN_AGE_MS) stale.push(part.partId);
      }
      // In batches: only the stale parts' uploads are looked up, never every upload id.
      for (let i = 0; i < stale.length; i += 500) {
        const batch = stale.slice(i, i + 500);
        // A tus upload's tail part lives as long as its upload.
        const known = await deps.repos.uploads.existingIds([...new Set(batch.map(uploadOfPart))]);
        for (const partId of batch) {
          if (known.has(uploadOfPart(partId))) continue;
          await driver.deletePart(partId);
          strays++;
        }
      }
    } catch (err) {
      deps.log.warn({ err, node: driver.name }, 'node sweep failed');
    }
  }
  await deps.repos.sessions.deleteExpired(now);
  await deps.repos.challenges.deleteExpired(now);
  await deps.repos.archives.deleteExpired(now);
  await deps.repos.davLocks.deleteExpired(now);
  // Nextcloud upload folders that never got a byte (those with bytes go with their upload).
  await deps.repos.ncUploads.deleteStaleWithoutUpload(now - NC_SESSION_TTL_MS);
  if (uploads + strays > 0) deps.log.info({ uploads, strays }, 'swept abandoned uploads');
  return { uploads, strays };
}

/**
 * Physical deletion, only when no one references the content any more and the grace period has
 * passed (a restore or a new upload may still want it), and no young backup may list it (its
 * restore would want it). The claim re-checks both in the same statement, so a reference created
 * or a backup started meanwhile keeps the content.
 */
export function collectJob(deps: Deps): Job {
  return { name: 'collect', everyMs: 10 * 60_000, run: () => collect(deps).then(() => undefined) };
}

export async function collect(deps: Deps): Promise<number> {
  let removed = 0;
  const backupsSince = deps.now() - (deps.backupKeepMs ?? 0);
  for (const content of await deps.repos.contents.listCollectable(
    deps.now() - deps.gcGraceMs,
    200,
    backupsSince,
  )) {
    if (!(await deps.repos.contents.claimForDeletion(content.id, backupsSince))) continue;
    const replicas = await deps.repos.contents.replicasOf(content.id);
    let allGone = true;
    for (const replica of replicas) {
      const driver = deps.cluster.driver(replica.node_id);
      try {
        if (!driver) throw new Error('node not configured');
        await driver.delete(objectKey(content.sha1));
        await deps.repos.contents.removeReplica(content.id, replica.node_id);
      } catch (error) {
        allGone = false;
        deps.log.warn(
          { err: error, node: replica.node_name, sha1: content.sha1 },
          'could not delete a replica yet',
        );
      }
    }
    // A node that was down keeps its row; the next run retries it.
    if (allGone) {
      await deps.repos.contents.delete(content.id);
      removed++;
    }
  }
  return removed;
}
