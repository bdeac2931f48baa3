import { createHash, randomBytes } from 'node:crypto';
import type { Page } from '@playwright/test';
import { expect, screenshot, signInAsAdmin, test, uniqueName } from './helpers.ts';

const CHARTS = [
  'chart-storage',
  'chart-nodes-now',
  'chart-transfers',
  'chart-bytes',
  'chart-dedupe',
  'chart-errors',
  'chart-replicas',
  'chart-users',
];

/** Every chart drew a canvas whose ECharts instance holds non-zero points (ChartCard's `data-points`). */
async function expectChartsWithData(page: Page, charts = CHARTS) {
  for (const id of charts) {
    const card = page.getByTestId(id);
    await expect(card.locator('canvas').first()).toBeVisible();
    await expect
      .poll(async () => Number((await card.getAttribute('data-points')) ?? 0), { message: id })
      .toBeGreaterThan(0);
  }
}

test('the admin dashboard charts real traffic after a sample, in every range, dark and on a phone', async ({
  page,
}) => {
  await signInAsAdmin(page);

  // Traffic: two uploads, a download, and an upload given up (a failed upload).
  const ids: string[] = [];
  for (const size of [300_000, 120_000]) {
    const res = await page.request.post('/api/files', {
      multipart: {
        file: {
          name: `${uniqueName('dash')}.bin`,
          mimeType: 'application/octet-stream',
          buffer: randomBytes(size),
        },
      },
    });
    expect(res.status(), await res.text()).toBe(201);
    ids.push(((await res.json()) as { file: { id: string } }).file.id);
  }
  expect((await page.request.get(`/api/files/${ids[0]}/content`)).status()).toBe(200);
  const bytes = randomBytes(1000);
  const created = await page.request.post('/api/uploads', {
    data: { name: 'given up.bin', size: bytes.length, sha1: createHash('sha1').update(bytes).digest('hex') },
  });
  expect(created.ok(), await created.text()).toBe(true);
  const { uploadId } = (await created.json()) as { uploadId: string };
  expect((await page.request.delete(`/api/uploads/${uploadId}`)).status()).toBe(204);

  await page.getByTestId('nav-dashboard').click();
  await expect(page).toHaveURL(/\/admin\/dashboard/);
  // Sample now rather than wait for the minute's sample.
  await page.getByTestId('dashboard-sample').click();
  await expect(page.getByTestId('dashboard-tiles')).toBeVisible();
  await expectChartsWithData(page);
  await expect(page.getByTestId('tile-users')).not.toContainText(/^\s*0\s*$/);
  // Tall enough for every chart in the kept picture.
  await page.setViewportSize({ width: 1360, height: 1480 });
  await expectChartsWithData(page, ['chart-users']);
  await screenshot(page, 'dashboard');

  // Daily points (the hourly ranges' reading is the server suite's).
  const answer = page.waitForResponse((r) => r.url().includes('/api/admin/stats?range=30d'));
  await page.getByTestId('dashboard-range-30d').click();
  expect((await answer).status()).toBe(200);
  await expectChartsWithData(page, ['chart-transfers', 'chart-storage']);

  // Dark, on a phone, in Chinese: ECharts' dark theme, one column, nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.evaluate(() => {
    localStorage.setItem('dfs.theme', 'dark');
    localStorage.setItem('dfs.locale', 'zh-CN');
  });
  await page.reload();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await expect(page.getByRole('heading', { name: '仪表盘' })).toBeVisible();
  await expect(page.getByTestId('chart-transfers')).toContainText('上传与下载');
  await expectChartsWithData(page, ['chart-transfers', 'chart-nodes-now']);
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await page.screenshot({ path: test.info().outputPath('dashboard-phone-dark.png'), fullPage: true });
  await page.evaluate(() => {
    localStorage.removeItem('dfs.theme');
    localStorage.removeItem('dfs.locale');
  });
});
