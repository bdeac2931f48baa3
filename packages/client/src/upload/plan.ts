/** The engine's view of the chunk plan; the plan itself (`chunkCountFor`, `chunkRange`) is @dfs/shared's, as the server's. */
import { type ChunkRange, chunkCountFor, chunkRange } from '@dfs/shared';

export { type ChunkRange, chunkCountFor, chunkRange };

/** Indexes in `[0, chunkCount)` that the server does not have yet, ascending. */
export function missingChunks(chunkCount: number, received: Iterable<number>): number[] {
  const have = new Set(received);
  const out: number[] = [];
  for (let i = 0; i < chunkCount; i++) if (!have.has(i)) out.push(i);
  return out;
}

/** Total bytes of the given chunk indexes (the last chunk may be short). */
export function bytesOfChunks(size: number, chunkSize: number, indexes: Iterable<number>): number {
  let n = 0;
  for (const i of indexes) {
    const r = chunkRange(size, chunkSize, i);
    n += Math.max(0, r.end - r.start);
  }
  return n;
}
