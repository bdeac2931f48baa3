import type { Page } from '@playwright/test';
import { expect, MiB, randomFile, signUpViaApi, test, uniqueName, uploadRow } from './helpers.ts';

/** How far the file table reaches below the upload panel's top edge (≤ 0: no row behind it). */
async function overlap(page: Page): Promise<number> {
  const table = await page.getByTestId('file-table').boundingBox();
  const panel = await page.getByTestId('upload-panel').boundingBox();
  return table && panel ? table.y + table.height - panel.y : Number.POSITIVE_INFINITY;
}

/** Rows of the file table's scroll area that fit on screen. */
async function visibleRows(page: Page): Promise<number> {
  return page.evaluate(() => {
    const body = document.querySelector('[data-testid=file-table] .n-data-table-base-table-body');
    return body ? Math.floor(body.getBoundingClientRect().height / 40) : 0;
  });
}

test('the upload panel lists running uploads first, folds finished ones, and covers no row', async ({
  page,
}, testInfo) => {
  await signUpViaApi(page.request, uniqueName('pam'));
  // Enough rows to fill the table down to where the panel sits.
  for (let i = 0; i < 30; i++) {
    await page.request.post('/api/folders', { data: { name: `folder ${String(i).padStart(2, '0')}` } });
  }
  await page.goto('/files');
  const dir = testInfo.outputPath('files');
  const big = randomFile(dir, 'big.bin', 64 * MiB);
  const small = [randomFile(dir, 'a.txt', 1000), randomFile(dir, 'b.txt', 2000)];
  // Slow the chunk PUTs down so the big file is still running when the small ones are done.
  await page.route(/\/api\/uploads\/[^/]+\/chunks\/\d+$/, async (route) => {
    await new Promise((r) => setTimeout(r, 400));
    await route.continue().catch(() => {});
  });
  await page.getByTestId('upload-input').setInputFiles([big.path, ...small.map((f) => f.path)]);

  const fold = page.getByTestId('upload-finished-fold');
  await expect(fold).toHaveText(/2 finished uploads/);
  // Only the running upload is listed; the finished ones open on demand.
  await expect(page.locator('[data-testid=upload-row]')).toHaveCount(1);
  await expect(uploadRow(page, 'big.bin')).toBeVisible();
  await fold.click();
  await expect(uploadRow(page, 'a.txt')).toHaveAttribute('data-state', 'done');
  // Running first.
  await expect(page.locator('[data-testid=upload-row]').first()).toHaveAttribute('data-name', 'big.bin');
  // No per-file hashing speed for tiny files.
  await expect(uploadRow(page, 'a.txt').getByTestId('upload-detail')).not.toContainText('hashed at');

  // The file table ends above the panel (no row, and no row's actions, hidden behind it) and
  // keeps most of the window: the panel is not allowed to squeeze it to a few rows. In English
  // and in Chinese, whose CJK fonts have other metrics: the panel's height is set in pixels.
  // (The panel just grew: the table follows on the next layout.)
  await expect.poll(() => overlap(page)).toBeLessThanOrEqual(1);
  expect(await visibleRows(page)).toBeGreaterThanOrEqual(8);
  const enHeight = (await page.getByTestId('upload-panel').boundingBox())!.height;
  await page.getByTestId('locale-switch').click();
  await page.getByText('简体中文').click();
  await expect(page.getByTestId('upload-finished-fold')).toContainText('已完成');
  await expect
    .poll(async () => (await page.getByTestId('upload-panel').boundingBox())!.height)
    .toBe(enHeight);
  await expect.poll(() => overlap(page)).toBeLessThanOrEqual(1);
  expect(await visibleRows(page)).toBeGreaterThanOrEqual(8);
  await page.getByTestId('locale-switch').click();
  await page.getByText('English').click();

  // A short window (a 768-pixel laptop screen less the browser's bars): still no row behind the
  // panel; the list folds away and the summary line stays.
  await page.setViewportSize({ width: 1366, height: 657 });
  await expect.poll(() => overlap(page)).toBeLessThanOrEqual(1);
  await expect(page.getByTestId('upload-totals')).toBeVisible();
  await page.setViewportSize({ width: 1360, height: 860 });

  await page.unroute(/\/api\/uploads\/[^/]+\/chunks\/\d+$/);
  await expect(uploadRow(page, 'big.bin')).toHaveAttribute('data-state', 'done', { timeout: 60_000 });
  await expect(fold).toHaveCount(0);
});
