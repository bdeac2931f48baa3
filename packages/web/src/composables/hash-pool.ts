import {
  defaultHashWorkerCount,
  type HashFileFn,
  HashWorkerError,
  WorkerHashPool,
  type WorkerLike,
} from '@dfs/client';

let pool: WorkerHashPool | null = null;

function createPool(): WorkerHashPool {
  return WorkerHashPool.create(
    () =>
      new Worker(new URL('../workers/hash.worker.ts', import.meta.url), {
        type: 'module',
        name: 'dfs-hash',
      }) as unknown as WorkerLike,
    defaultHashWorkerCount(),
  );
}

/**
 * Runs `job` on the shared worker pool, created on first use (no workers for visitors who never
 * upload). A pool whose worker crashed stays broken, so it is replaced, and the job runs once
 * more on the new pool: one crash (a worker killed under memory pressure, say) fails neither
 * this file nor any later upload of the tab. A second crash in a row is reported.
 */
async function inPool<T>(job: (p: WorkerHashPool) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    pool ??= createPool();
    const current = pool;
    try {
      return await job(current);
    } catch (err) {
      if (!(err instanceof HashWorkerError)) throw err;
      current.terminate();
      if (pool === current) pool = null;
      if (attempt >= 1) throw err;
    }
  }
}

/** Hashes a file (SHA-1 and piece CRC-32Cs) in the shared worker pool. */
export const hashInWorkers: HashFileFn = (source, options) => inPool((p) => p.hashFile(source, options));

/** The SHA-1 of a small file's Blob, read and hashed in a worker (see `WorkerHashPool#sha1OfBlob`). */
export const sha1OfBlobInWorkers = (blob: Blob): Promise<string> => inPool((p) => p.sha1OfBlob(blob));

/** An instant-upload proof over a range of a file's Blob, taken in a worker. */
export const proofOfBlobInWorkers = (nonce: string, range: Blob): Promise<string> =>
  inPool((p) => p.proofOfBlob(nonce, range));

/** The CRC-32C of a chunk's Blob, read in a worker (see `WorkerHashPool#crc32cOfBlob`). */
export const crc32cOfBlobInWorkers = (blob: Blob): Promise<number> => inPool((p) => p.crc32cOfBlob(blob));
