/**
 * 1. Hashing: the client core's pass (SHA-1 of the file + CRC-32C of each 8 MiB piece) in Node with
 * node:crypto (the CLI's backend) and hash-wasm (the browser's), and in Chromium's workers through
 * WorkerHashPool; against `sha1sum` over the same file. In Chromium also its two halves apart:
 * reading the Blob with no hashing, and the hash pass over bytes already in memory, so a slow
 * row says which half holds it back.
 */
import { createReadStream } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createWasmHasher, hashSource } from '@dfs/client';
import { fileSourceFromPath, nodeHashFile } from '@dfs/client/node';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';
import type { BrowserHashResult } from '../browser/page.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { addFailure, addRow } from '../lib/report.ts';
import { mbPerSecond, run, sizeLabel, writeRandomFile } from '../lib/util.ts';

export interface HashingOptions {
  tmp: string;
  bytes: number;
  runs: number;
  browserWorkers: number[];
}

export async function benchHashing(o: HashingOptions): Promise<void> {
  const file = path.join(o.tmp, 'hash.bin');
  await writeRandomFile(file, o.bytes);
  const label = sizeLabel(o.bytes);
  const sha1sum: number[] = [];
  const nodeCrypto: number[] = [];
  const wasm: number[] = [];
  let reference = '';
  let referenceCrcs: number[] = [];
  const wasmHasher = await createWasmHasher();
  const source = await fileSourceFromPath(file);

  // One warm-up pass of each (page cache, JIT, wasm instantiation), then interleaved runs.
  for (let i = -1; i < o.runs; i++) {
    const s = await run('sha1sum', [file]);
    const digest = s.stdout.split(' ')[0]!;
    reference ||= digest;
    let t0 = performance.now();
    const viaNode = await nodeHashFile(source);
    const nodeMs = performance.now() - t0;
    t0 = performance.now();
    const viaWasm = await hashSource(source, wasmHasher);
    const wasmMs = performance.now() - t0;
    referenceCrcs = viaNode.pieceCrc32cs;
    if (digest !== reference || viaNode.sha1 !== reference || viaWasm.sha1 !== reference) {
      addFailure(`hashing: digests differ (sha1sum ${digest}, node ${viaNode.sha1}, wasm ${viaWasm.sha1})`);
      return;
    }
    if (viaWasm.pieceCrc32cs.join() !== viaNode.pieceCrc32cs.join()) addFailure('hashing: piece CRCs differ');
    if (i < 0) continue;
    sha1sum.push(mbPerSecond(o.bytes, s.ms));
    nodeCrypto.push(mbPerSecond(o.bytes, nodeMs));
    wasm.push(mbPerSecond(o.bytes, wasmMs));
  }
  const alt = { name: '`sha1sum` (SHA-1 only)', values: sha1sum };
  addRow({
    group: '1 hashing',
    what: `client core in Node, node:crypto (CLI), ${label} file`,
    unit: 'MB/s',
    values: nodeCrypto,
    alt,
    higherIsBetter: true,
  });
  addRow({
    group: '1 hashing',
    what: `client core in Node, hash-wasm, ${label} file`,
    unit: 'MB/s',
    values: wasm,
    alt,
    higherIsBetter: true,
  });

  // ---- Chromium ----
  const { results, readMs, inMemoryMs } = await hashInChromium(file, o.runs, o.browserWorkers);
  addRow({
    group: '1 hashing',
    what: `Chromium: reading the ${label} Blob alone, 8 MiB slices, 2 in flight, no hashing (the ceiling of hashing a Blob)`,
    unit: 'MB/s',
    values: readMs.map((ms) => mbPerSecond(o.bytes, ms)),
    alt,
    higherIsBetter: true,
  });
  addRow({
    group: '1 hashing',
    what: `Chromium: the workers' hash pass (hash-wasm) on the page thread over the ${label} already in memory, no reading`,
    unit: 'MB/s',
    values: inMemoryMs.map((ms) => mbPerSecond(o.bytes, ms)),
    alt,
    higherIsBetter: true,
  });
  for (const [workers, runs] of results) {
    for (const r of runs) {
      if (r.sha1 !== reference || r.pieceCrc32cs.join() !== referenceCrcs.join()) {
        addFailure(`hashing: Chromium (${workers} workers) got SHA-1 ${r.sha1}, sha1sum ${reference}`);
      }
    }
    addRow({
      group: '1 hashing',
      what: `Chromium WorkerHashPool, ${workers} worker${workers > 1 ? 's' : ''} (hash-wasm), ${label} Blob`,
      unit: 'MB/s',
      values: runs.map((r) => mbPerSecond(o.bytes, r.ms)),
      alt,
      higherIsBetter: true,
    });
  }
}

/** Serves a bundled page + worker and the bench file, and hashes it in Debian's Chromium. */
async function hashInChromium(
  file: string,
  runs: number,
  workerCounts: number[],
): Promise<{ results: Map<number, BrowserHashResult[]>; readMs: number[]; inMemoryMs: number[] }> {
  const built = await esbuild.build({
    entryPoints: {
      page: path.join(import.meta.dirname, '../browser/page.ts'),
      worker: path.join(import.meta.dirname, '../browser/worker.ts'),
    },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outdir: '/bundle',
    write: false,
    logLevel: 'silent',
  });
  const assets = new Map(built.outputFiles.map((f) => [`/${path.basename(f.path)}`, f.contents]));
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>dfs hash bench</title><script type="module" src="/page.js"></script>');
    } else if (url === '/data.bin') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      createReadStream(file).pipe(res);
    } else if (assets.has(url)) {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(assets.get(url));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const stopServer = onCleanup('hash page server', () => new Promise<void>((r) => server.close(() => r())));
  const { port } = server.address() as { port: number };

  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const closeBrowser = onCleanup('chromium', () => browser.close());
  try {
    const page = await browser.newPage();
    page.on('pageerror', (error) => console.error('bench: page error:', error.message));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => 'dfsBench' in window);
    await page.evaluate((u) => window.dfsBench.load(u), `http://127.0.0.1:${port}/data.bin`);
    const results = new Map<number, BrowserHashResult[]>();
    for (const workers of workerCounts) {
      results.set(
        workers,
        await page.evaluate(([w, n]) => window.dfsBench.hash(w, n), [workers, runs] as const),
      );
    }
    const readMs = await page.evaluate((n) => window.dfsBench.readOnly(2, n), runs);
    const inMemoryMs = await page.evaluate((n) => window.dfsBench.hashInMemory(n), runs);
    return { results, readMs, inMemoryMs };
  } finally {
    await closeBrowser();
    await stopServer();
  }
}
