import { execFileSync } from 'node:child_process';
import { expect, MiB, randomFile, signUpViaApi, test, uniqueName, uploadRow } from './helpers.ts';

/**
 * Not a test: a measurement, skipped unless DFS_E2E_HASH_BENCH=1
 * (`pnpm --filter @dfs/e2e bench:hash`). Hashes a 256 MiB file through the page's worker pool
 * (SHA-1 of the file + MD5 of every piece, as an upload does) and prints MB/s next to
 * `sha1sum` on the same file.
 */
test.skip(process.env.DFS_E2E_HASH_BENCH !== '1', 'set DFS_E2E_HASH_BENCH=1 to measure hashing speed');
test.setTimeout(240_000);

const SIZE = 256 * MiB;
const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

test('hashing speed of a 256 MiB file in Chromium', async ({ page }, testInfo) => {
  const file = randomFile(testInfo.outputPath('bench'), 'bench-256MiB.bin', SIZE);
  const results: Record<string, number> = {};

  for (let i = 0; i < 2; i++) {
    const t0 = performance.now();
    execFileSync('sha1sum', [file.path]);
    results[`sha1sum run ${i + 1}`] = mbps(SIZE, performance.now() - t0);
  }

  await signUpViaApi(page.request, uniqueName('bench'));
  await page.goto('/files');

  // Raw read speed of the File in the page (Blob.slice → arrayBuffer, 8 MiB pieces): the
  // ceiling for any in-browser hashing.
  await page.evaluate(() => {
    const input = document.createElement('input');
    input.type = 'file';
    input.id = 'bench-input';
    document.body.appendChild(input);
  });
  await page.locator('#bench-input').setInputFiles(file.path);
  results['browser read only'] = await page.evaluate(async () => {
    const f = (document.getElementById('bench-input') as HTMLInputElement).files![0]!;
    const t0 = performance.now();
    for (let pos = 0; pos < f.size; pos += 8 << 20) await f.slice(pos, pos + (8 << 20)).arrayBuffer();
    return f.size / 1e6 / ((performance.now() - t0) / 1000);
  });

  // Twice through the real upload path (the first run pays worker start-up and wasm compile).
  // Each run is cancelled once hashing is over: only the hashing is measured.
  for (let i = 0; i < 2; i++) {
    await page.getByTestId('upload-input').setInputFiles(file.path);
    const row = uploadRow(page, 'bench-256MiB.bin');
    await expect(row).toHaveAttribute('data-hash-ms', /\d+/, { timeout: 120_000 });
    const ms = Number(await row.getAttribute('data-hash-ms'));
    results[`page workers run ${i + 1}`] = mbps(SIZE, ms);
    await row.getByTestId('upload-cancel').click();
    await expect(row).toHaveAttribute('data-state', 'canceled');
    await page.getByTestId('upload-clear-finished').click();
  }

  const lines = Object.entries(results).map(([k, v]) => `${k.padEnd(22)} ${v.toFixed(0)} MB/s`);
  console.log(`hashing 256 MiB (SHA-1 + per-piece MD5 in the page, SHA-1 for sha1sum):\n${lines.join('\n')}`);
  testInfo.annotations.push({ type: 'hash-bench', description: lines.join('; ') });
});
