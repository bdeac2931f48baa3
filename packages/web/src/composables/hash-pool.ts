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
 * Hashing through the shared worker pool, created on first use (no workers for visitors who
 * never upload). A pool whose worker crashed is replaced, so one failure doesn't break every
 * later upload of the tab.
 */
export const hashInWorkers: HashFileFn = async (source, options) => {
  pool ??= createPool();
  const current = pool;
  try {
    return await current.hashFile(source, options);
  } catch (err) {
    if (err instanceof HashWorkerError) {
      current.terminate();
      if (pool === current) pool = null;
    }
    throw err;
  }
};

/** The SHA-1 of a small file's Blob, read and hashed in a worker (see `WorkerHashPool#sha1OfBlob`). */
export const sha1OfBlobInWorkers = async (blob: Blob): Promise<string> => {
  pool ??= createPool();
  return pool.sha1OfBlob(blob);
};
