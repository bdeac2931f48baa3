import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, mkdirSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Share } from '@dfs/shared';
import { expect, MiB, PASSWORD, signUpViaApi, test, uniqueName } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// Past 1 GiB, and not a whole number of chunks.
const SIZE = 1024 * MiB + 12_345;
const SHARE_PASSWORD = 'big secret 42';
// Far below the file: a page that held the bytes would be past it long before the end.
const HEAP_LIMIT = 200 * MiB;

/**
 * `size` bytes from a fixed seed, written 1 MiB at a time (memory stays flat). Every MiB block
 * differs, so no two chunks are alike. Returns the SHA-1.
 */
function patternFile(p: string, size: number): string {
  mkdirSync(path.dirname(p), { recursive: true });
  const base = Buffer.alloc(MiB);
  let x = 0x9e3779b9;
  for (let i = 0; i < MiB; i += 4) {
    // xorshift32
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    base.writeUInt32LE(x >>> 0, i);
  }
  const h = createHash('sha1');
  const fd = openSync(p, 'w');
  try {
    const block = Buffer.alloc(MiB);
    for (let i = 0, left = size; left > 0; i++) {
      base.copy(block);
      for (let off = 0; off < MiB; off += 64 * 1024) block.writeUInt32LE(i, off);
      const n = Math.min(MiB, left);
      h.update(block.subarray(0, n));
      writeSync(fd, block, 0, n);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function sha1OfFile(p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha1');
    createReadStream(p, { highWaterMark: 4 * MiB })
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

test.setTimeout(300_000);

test('a password share above 1 GiB downloads to disk with a small page heap', async ({
  page,
  browser,
  baseURL,
}, testInfo) => {
  // The owner uploads through the HTTP API with the CLI: the browser is only the recipient.
  const owner = uniqueName('hugo');
  await signUpViaApi(page.request, owner);
  const signin = await page.request.post('/api/auth/signin', {
    data: { username: owner, password: PASSWORD },
  });
  const { token: bearer } = (await signin.json()) as { token: string };
  const src = testInfo.outputPath('files', 'big-1GiB.bin');
  let t0 = Date.now();
  const sha1 = patternFile(src, SIZE);
  const genMs = Date.now() - t0;
  t0 = Date.now();
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'packages/client/src/cli.ts', 'upload', src, '--id'],
    { cwd: ROOT, env: { ...process.env, DFS_SERVER: baseURL, DFS_TOKEN: bearer } },
  );
  const uploadMs = Date.now() - t0;
  const fileId = stdout.trim();
  const created = await page.request.post(`/api/files/${fileId}/shares`, {
    headers: { authorization: `Bearer ${bearer}` },
    data: { password: SHARE_PASSWORD },
  });
  expect(created.status(), await created.text()).toBe(201);
  const { share } = (await created.json()) as { share: Share };

  const visitor = await browser.newContext({ acceptDownloads: true });
  const other = await visitor.newPage();
  const urls: string[] = [];
  other.on('request', (r) => urls.push(r.url()));
  let downloads = 0;
  other.on('download', () => downloads++);
  await other.goto(`/s/${share.token}`);
  await expect(other.getByTestId('share-name')).toHaveText('big-1GiB.bin');
  await expect(other.getByTestId('share-size')).toHaveText('1.00 GiB');

  // A wrong password: an error, no download, nothing claimed.
  await other.getByTestId('public-password').locator('input').fill('not it');
  await other.getByTestId('public-download').click();
  await expect(other.getByTestId('public-error')).toContainText('Wrong password');
  await expect(other.getByTestId('public-started')).toHaveCount(0);
  expect(downloads).toBe(0);

  // JSHeapUsedSize alone misses ArrayBuffer contents (a page reading the bytes holds them
  // there), so the heap counts with its backing stores.
  const cdp = await visitor.newCDPSession(other);
  const heapUsed = async () => {
    const { usedSize, backingStorageSize } = await cdp.send('Runtime.getHeapUsage');
    return usedSize + backingStorageSize;
  };
  const heapBefore = await heapUsed();
  expect(heapBefore).toBeGreaterThan(0);

  await other.getByTestId('public-password').locator('input').fill(SHARE_PASSWORD);
  t0 = Date.now();
  const [download] = await Promise.all([
    other.waitForEvent('download'),
    other.getByTestId('public-download').click(),
  ]);
  expect(download.suggestedFilename()).toBe('big-1GiB.bin');
  // The page says the download started, and nothing more, while the bytes are still coming.
  await expect(other.getByTestId('public-started')).toContainText('Download started');
  await expect(other.getByTestId('public-error')).toHaveCount(0);
  await expect(other.locator('.n-progress')).toHaveCount(0);

  let heapMax = heapBefore;
  let samples = 0;
  let finished = false;
  const saved = download.path().finally(() => {
    finished = true;
  });
  while (!finished) {
    heapMax = Math.max(heapMax, await heapUsed());
    samples++;
    await new Promise((r) => setTimeout(r, 200));
  }
  const savedPath = await saved;
  const downloadMs = Date.now() - t0;
  expect(await download.failure()).toBeNull();
  expect(statSync(savedPath).size).toBe(SIZE);
  expect(await sha1OfFile(savedPath)).toBe(sha1);
  // Sampled while the bytes came, not only before and after.
  expect(samples).toBeGreaterThan(1);
  expect(heapMax).toBeLessThan(HEAP_LIMIT);
  // Still only "started": the page cannot know the browser finished, so it never says so.
  await expect(other.getByTestId('public-started')).toBeVisible();
  await expect(other.locator('.n-progress')).toHaveCount(0);
  // The password travelled in a header, never in a URL.
  const encoded = [
    encodeURIComponent(SHARE_PASSWORD),
    new URLSearchParams({ p: SHARE_PASSWORD }).toString().slice(2),
  ];
  for (const u of urls) for (const e of encoded) expect(u).not.toContain(e);

  const figures =
    `generate ${genMs} ms, CLI upload ${uploadMs} ms, browser download ${downloadMs} ms ` +
    `(${(SIZE / 1e6 / (downloadMs / 1000)).toFixed(0)} MB/s); page JS heap ${(heapBefore / MiB).toFixed(1)} MiB ` +
    `before, max ${(heapMax / MiB).toFixed(1)} MiB over ${samples} samples`;
  console.log(`1 GiB share: ${figures}`);
  testInfo.annotations.push({ type: 'share-big', description: figures });
  await visitor.close();
  rmSync(src);
});
