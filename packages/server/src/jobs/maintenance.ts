import type { FastifyBaseLogger } from 'fastify';
import type { Repositories } from '../repositories/index.ts';
import type { StorageCluster } from '../services/cluster.ts';
import type { StagingArea } from '../storage/staging.ts';
import { objectKey } from '../storage/types.ts';
import type { Job } from './runner.ts';

interface Deps {
  repos: Repositories;
  staging: StagingArea;
  cluster: StorageCluster;
  log: FastifyBaseLogger;
  now: () => number;
  gcGraceMs: number;
}

/** Tmp files younger than this may belong to a write in progress. */
const TMP_MIN_AGE_MS = 6 * 3600_000;

/**
 * Abandoned uploads must not fill disks (tusd #176, #435): expired sessions lose their staged
 * bytes, staging directories without a session go, and so do old tmp files on every node.
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
    await deps.staging.remove(upload.id);
    await deps.repos.uploads.delete(upload.id);
    uploads++;
  }
  await deps.repos.uploads.deleteCompletedBefore(now);
  const known = new Set(await deps.repos.uploads.allIds());
  let strays = 0;
  for (const id of await deps.staging.uploadIds()) {
    if (!known.has(id)) {
      await deps.staging.remove(id);
      strays++;
    }
  }
  await deps.staging.sweepTmp(TMP_MIN_AGE_MS, now);
  for (const nodeId of deps.cluster.liveNodeIds()) {
    await deps.cluster
      .driver(nodeId)
      ?.sweepTmp(TMP_MIN_AGE_MS)
      .catch((err) => deps.log.warn({ err }, 'node tmp sweep failed'));
  }
  await deps.repos.sessions.deleteExpired(now);
  await deps.repos.challenges.deleteExpired(now);
  if (uploads + strays > 0) deps.log.info({ uploads, strays }, 'swept abandoned uploads');
  return { uploads, strays };
}

/**
 * Physical deletion, only when no one references the content any more and the grace period has
 * passed (a restore or a new upload may still want it). The claim re-checks references in the
 * same statement, so a reference created meanwhile keeps the content.
 */
export function collectJob(deps: Deps): Job {
  return { name: 'collect', everyMs: 10 * 60_000, run: () => collect(deps).then(() => undefined) };
}

export async function collect(deps: Deps): Promise<number> {
  let removed = 0;
  for (const content of await deps.repos.contents.listCollectable(deps.now() - deps.gcGraceMs, 200)) {
    if (!(await deps.repos.contents.claimForDeletion(content.id))) continue;
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
