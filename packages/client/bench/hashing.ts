/**
 * Hashing throughput: SHA-1 of the whole buffer + CRC-32C of each 8 MiB piece (what an upload needs),
 * per backend, plus the worker pool over real worker threads. Not a test; run:
 *   cd packages/client && npx tsx bench/hashing.ts [MiB=256]
 */
import { randomFillSync } from 'node:crypto';
import { MessageChannel, Worker } from 'node:worker_threads';
import {
  createJsHasher,
  createWasmHasher,
  fileSourceFromBytes,
  type Hasher,
  hashSource,
  WorkerHashPool,
  type WorkerLike,
} from '../src/index.ts';
import { nodeHasher } from '../src/node/index.ts';

const mib = Number(process.argv[2] ?? 256);
const data = new Uint8Array(mib * 1024 * 1024);
for (let i = 0; i < data.length; i += 65536) randomFillSync(data, i, Math.min(65536, data.length - i));
const source = fileSourceFromBytes(data, 'bench.bin');
// fileSourceFromBytes copies each slice (like a real read); measure that cost alone too
const rate = (ms: number, bytes = data.length) => `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;

async function time(label: string, fn: () => Promise<unknown> | unknown, bytes = data.length) {
  await fn(); // warm-up
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await fn();
    runs.push(performance.now() - t0);
  }
  runs.sort((a, b) => a - b);
  console.log(`${label.padEnd(48)} ${rate(runs[1]!, bytes).padStart(10)}   (median of 3, ${mib} MiB)`);
}

const backends: [string, Hasher][] = [
  ['node:crypto', nodeHasher],
  ['wasm (hash-wasm)', await createWasmHasher()],
  ['js (@noble sha1 + SheetJS crc32c)', createJsHasher()],
];
await time('slice copies only (read cost baseline)', async () => {
  for (let i = 0; i < data.length; i += 8 << 20) await source.slice(i, i + (8 << 20));
});
for (const [name, h] of backends) {
  await time(`${name}: sha1 alone`, async () => {
    const s = await h.createSha1();
    for (let i = 0; i < data.length; i += 8 << 20) s.update(data.subarray(i, i + (8 << 20)));
    s.digest();
  });
  await time(`${name}: crc32c alone`, () => {
    for (let i = 0; i < data.length; i += 8 << 20) h.crc32c(data.subarray(i, i + (8 << 20)));
  });
  await time(`${name}: sha1 + piece crc32cs (hashSource)`, () => hashSource(source, h));
}

// worker pool over real threads: each worker runs runHashWorker on a MessagePort (bench/hash-worker.mjs)
for (const n of [1, 2, 3]) {
  const threads: Worker[] = [];
  const pool = WorkerHashPool.create(() => {
    const { port1, port2 } = new MessageChannel();
    threads.push(
      new Worker(new URL('./hash-worker.mjs', import.meta.url), {
        workerData: { port: port2 },
        transferList: [port2],
      }),
    );
    return port1 as unknown as WorkerLike;
  }, n);
  await time(`WorkerHashPool, ${n} worker thread(s), wasm`, () => pool.hashFile(source));
  pool.terminate();
  await Promise.all(threads.map((t) => t.terminate()));
}
process.exit(0);
