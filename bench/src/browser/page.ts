/**
 * The Chromium half of the hashing bench: loads the bench file as a Blob, then hashes it with the
 * client core's WorkerHashPool (module workers running runHashWorker), as the web app does.
 * Driven from Node through `window.dfsBench` (playwright-core's page.evaluate).
 */
import { fileSourceFromBlob, WorkerHashPool, type WorkerLike } from '@dfs/client';

export interface BrowserHashResult {
  ms: number;
  sha1: string;
  pieceCrc32cs: number[];
}

let blob: Blob | null = null;

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
  hardwareConcurrency: () => navigator.hardwareConcurrency,
};

declare global {
  interface Window {
    dfsBench: typeof api;
  }
}
window.dfsBench = api;
