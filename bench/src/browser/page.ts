/**
 * The Chromium half of the hashing bench: loads the bench file as a Blob, then hashes it with the
 * client core's WorkerHashPool (module workers running runHashWorker), as the web app does.
 * Driven from Node through `window.dfsBench` (playwright-core's page.evaluate).
 */
import { createWasmHasher, fileSourceFromBlob, WorkerHashPool, type WorkerLike } from '@dfs/client';

export interface BrowserHashResult {
  ms: number;
  sha1: string;
  pieceCrc32cs: number[];
}

let blob: Blob | null = null;

const PIECE = 8 * 1024 * 1024;

function pool(workers: number): WorkerHashPool {
  return WorkerHashPool.create(
    () => new Worker('/worker.js', { type: 'module', name: 'dfs-hash' }) as unknown as WorkerLike,
    workers,
  );
}

const api = {
  /** Fetches the bench file into a Blob; returns its size. */
  async load(url: string): Promise<number> {
    blob = await (await fetch(url)).blob();
    return blob.size;
  },
  /** Hashes the Blob `runs` times with one pool of `workers` workers (after a small warm-up). */
  async hash(workers: number, runs: number): Promise<BrowserHashResult[]> {
    if (!blob) throw new Error('load() first');
    const p = pool(workers);
    try {
      // Warm-up: starts the workers and instantiates hash-wasm in each of them.
      await p.hashFile(fileSourceFromBlob(blob.slice(0, 16 * 1024 * 1024), 'warm-up'));
      const out: BrowserHashResult[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        const digest = await p.hashFile(fileSourceFromBlob(blob, 'bench.bin'));
        out.push({ ms: performance.now() - t0, sha1: digest.sha1, pieceCrc32cs: digest.pieceCrc32cs });
      }
      return out;
    } finally {
      p.terminate();
    }
  },
  /**
   * The ceiling of any hashing of a Blob here: reading it alone, in 8 MiB slices with `inFlight`
   * reads at once (as the pool's workers read their pieces), no hashing. Milliseconds per run.
   */
  async readOnly(inFlight: number, runs: number): Promise<number[]> {
    const b = blob;
    if (!b) throw new Error('load() first');
    const out: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      let next = 0;
      const reader = async () => {
        while (next < b.size) {
          const at = next;
          next += PIECE;
          await b.slice(at, at + PIECE).arrayBuffer();
        }
      };
      await Promise.all(Array.from({ length: inFlight }, reader));
      out.push(performance.now() - t0);
    }
    return out;
  },
  /**
   * The same hash pass as a worker's (hash-wasm SHA-1 of the whole, CRC-32C of each 8 MiB piece)
   * on the page's thread over bytes already in memory: the hashing alone, without reading.
   */
  async hashInMemory(runs: number): Promise<number[]> {
    if (!blob) throw new Error('load() first');
    const bytes = new Uint8Array(await blob.arrayBuffer());
    const hasher = await createWasmHasher();
    const out: number[] = [];
    for (let r = -1; r < runs; r++) {
      const t0 = performance.now();
      const sha1 = await hasher.createSha1();
      for (let at = 0; at < bytes.byteLength; at += PIECE) {
        const piece = bytes.subarray(at, at + PIECE);
        sha1.update(piece);
        hasher.crc32c(piece);
      }
      sha1.digest();
      if (r >= 0) out.push(performance.now() - t0);
    }
    return out;
  },
  hardwareConcurrency: () => navigator.hardwareConcurrency,
};

declare global {
  interface Window {
    dfsBench: typeof api;
  }
}
window.dfsBench = api;
