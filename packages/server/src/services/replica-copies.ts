import { createHash } from 'node:crypto';
import { type Readable, Transform } from 'node:stream';
import type { Repositories } from '../repositories/index.ts';
import { ObjectNotFoundError, objectKey } from '../storage/types.ts';
import type { StorageCluster } from './cluster.ts';
import { BLOCK_SIZE, BlockHasher, fitsSize } from './hashing/blocks.ts';

/**
 * The byte-level work of repair and scrub, on top of the cluster's nodes: copying a content's
 * object from a good replica to a new node, and re-reading a replica to check it.
 */

export type ReplicateResult =
  | { status: 'copied'; from: string }
  | { status: 'target_failed'; error: unknown }
  | { status: 'no_source' };

export type VerifyResult = 'ok' | 'missing' | 'corrupt' | 'unavailable';

/**
 * Copies a content's object onto `targetId` from the first source replica that yields the right
 * bytes. The copy is hashed on the way and published on the target only when its SHA-1 and size
 * match, so a damaged source never spreads: it is marked `corrupt` and the next source is tried.
 */
export async function replicate(
  cluster: StorageCluster,
  content: { sha1: string; size: number },
  sourceIds: string[],
  targetId: string,
): Promise<ReplicateResult> {
  const target = cluster.driver(targetId);
  if (!target) return { status: 'target_failed', error: new Error('target node is not configured') };
  const key = objectKey(content.sha1);
  const size = Number(content.size);
  for (const sourceId of cluster.readOrder(content.sha1, sourceIds)) {
    const source = cluster.driver(sourceId);
    if (!source || sourceId === targetId || !cluster.isUp(sourceId)) continue;
    let stream: Readable;
    try {
      stream = await source.get(key);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) await cluster.markReplica(content.sha1, sourceId, 'missing');
      else cluster.reportFailure(sourceId);
      continue;
    }
    const hash = createHash('sha1');
    let seen = 0;
    let ended = false;
    let sourceError: unknown;
    let mismatch = false;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        seen += chunk.length;
        callback(null, chunk);
      },
    });
    tap.on('end', () => {
      ended = true;
    });
    stream.on('error', (error) => {
      sourceError = error;
      tap.destroy(error);
    });
    stream.pipe(tap);
    try {
      await target.put(key, tap, size, {
        beforeCommit: async () => {
          if (seen !== size || hash.digest('hex') !== content.sha1) {
            mismatch = true;
            throw new Error('the copy does not hash to its sha1');
          }
        },
      });
      return { status: 'copied', from: sourceId };
    } catch (error) {
      stream.destroy();
      if (mismatch || seen > size || (ended && seen !== size)) {
        cluster.log.warn(
          { node: source.name, sha1: content.sha1 },
          'source replica is damaged; marking it corrupt',
        );
        await cluster.markReplica(content.sha1, sourceId, 'corrupt');
        continue;
      }
      if (sourceError) {
        cluster.reportFailure(sourceId);
        continue;
      }
      cluster.reportFailure(targetId);
      return { status: 'target_failed', error };
    }
  }
  return { status: 'no_source' };
}

/**
 * Re-reads one replica and checks its size and SHA-1. `onBytes` runs after every piece (the
 * scrub's rate limit waits there). Content stored before block tables existed gets its table
 * from the first replica that verifies.
 */
export async function verifyReplica(
  cluster: StorageCluster,
  repos: Repositories,
  content: { id: string; sha1: string; size: number },
  nodeId: string,
  onBytes?: (bytes: number) => Promise<void>,
): Promise<VerifyResult> {
  const driver = cluster.driver(nodeId);
  if (!driver || !cluster.isUp(nodeId)) return 'unavailable';
  let stream: Readable;
  try {
    stream = await driver.get(objectKey(content.sha1));
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return 'missing';
    cluster.reportFailure(nodeId);
    return 'unavailable';
  }
  const hash = createHash('sha1');
  const stored = await repos.contentBlocks.find(content.id).catch(() => undefined);
  const blocks = fitsSize(stored, Number(content.size)) ? null : new BlockHasher(BLOCK_SIZE);
  let seen = 0;
  try {
    for await (const chunk of stream) {
      const buf = chunk as Buffer;
      seen += buf.length;
      if (seen > Number(content.size)) return 'corrupt';
      hash.update(buf);
      blocks?.update(buf);
      await onBytes?.(buf.length);
    }
  } catch {
    cluster.reportFailure(nodeId);
    return 'unavailable';
  } finally {
    stream.destroy();
  }
  if (seen !== Number(content.size) || hash.digest('hex') !== content.sha1) return 'corrupt';
  if (blocks) {
    await repos.contentBlocks
      .save(content.id, blocks.table())
      .catch((err) => cluster.log.warn({ err, sha1: content.sha1 }, 'could not store block hashes'));
  }
  return 'ok';
}
