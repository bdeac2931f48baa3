import type { FileEntry } from '@dfs/shared';
import { expect, fileRow, signUpViaApi, test, uniqueName } from './helpers.ts';

const N = 10_000;

/**
 * The listing is served by page.route from 10,000 synthetic entries (honouring parentId, q,
 * sort, order, limit and offset like the server): creating 10,000 real rows over HTTP costs
 * the server minutes on this machine, and this test is about the browser side — paged
 * loading, virtual rows, keyboard, selection at that size. Server paging has its own tests.
 */
test('a folder with 10,000 entries: paged loading, virtual rows, sort, keyboard and search', async ({
  page,
}) => {
  await signUpViaApi(page.request, uniqueName('henry'));
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const all: FileEntry[] = Array.from({ length: N }, (_, i) => ({
    id: `fake${i}`,
    kind: 'file',
    name: `entry-${String(i).padStart(5, '0')}.txt`,
    parentId: null,
    size: (i * 7919) % 100_000,
    sha1: null,
    mime: 'text/plain',
    createdAt: new Date(t0 + i * 1000).toISOString(),
    updatedAt: new Date(t0 + i * 1000).toISOString(),
    mtime: new Date(t0 + i * 1000).toISOString(),
  }));
  const pages: string[] = [];
  await page.route(/\/api\/files\?/, async (route) => {
    const url = new URL(route.request().url());
    const q = url.searchParams.get('q');
    const sort = (url.searchParams.get('sort') ?? 'name') as
      | 'name'
      | 'size'
      | 'createdAt'
      | 'updatedAt'
      | 'mtime';
    const dir = url.searchParams.get('order') === 'desc' ? -1 : 1;
    const limit = Number(url.searchParams.get('limit') ?? N);
    const offset = Number(url.searchParams.get('offset') ?? 0);
    pages.push(`${offset}+${limit}`);
    let items = q ? all.filter((f) => f.name.includes(q)) : all;
    items = [...items].sort((a, b) => (a[sort] < b[sort] ? -dir : a[sort] > b[sort] ? dir : 0));
    await route.fulfill({ json: { items: items.slice(offset, offset + limit), total: items.length } });
  });

  await page.goto('/files');
  await expect(page.getByTestId('item-count')).toHaveText('10000 items', { timeout: 30_000 });
  expect(pages.length).toBeGreaterThan(1); // paged: a small first page, then large ones
  const rows = page.locator('[data-testid=file-row]');
  await expect(rows.first()).toHaveAttribute('data-name', 'entry-00000.txt');
  // Virtual scrolling: only a window of the 10,000 rows is in the DOM.
  expect(await rows.count()).toBeLessThan(200);

  // Keyboard: End jumps to (and selects) the last entry; the table scrolls there.
  await rows.first().click();
  await page.keyboard.press('End');
  await expect(fileRow(page, 'entry-09999.txt')).toBeVisible();
  await expect(page.getByTestId('selection-bar')).toContainText('1 selected');
  await page.keyboard.press('Control+ArrowUp');
  await page.keyboard.press('Space');
  await expect(page.getByTestId('selection-bar')).toContainText('2 selected');
  await page.keyboard.press('End');
  await page.keyboard.press('Shift+ArrowUp');
  await page.keyboard.press('Shift+ArrowUp');
  await expect(page.getByTestId('selection-bar')).toContainText('3 selected');
  await page.keyboard.press('Control+a');
  await expect(page.getByTestId('selection-bar')).toContainText('10000 selected');
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('selection-bar')).toHaveCount(0);

  // Sort by name, descending: the server sorts, the first row changes, the view goes to the top.
  await page.locator('th').filter({ hasText: 'Name' }).click();
  await expect(rows.first()).toHaveAttribute('data-name', 'entry-09999.txt');
  await page.locator('th').filter({ hasText: 'Size' }).click();
  await expect(rows.first()).toHaveAttribute('data-name', 'entry-05531.txt'); // the largest
  await page.locator('th').filter({ hasText: 'Name' }).click();
  await expect(rows.first()).toHaveAttribute('data-name', 'entry-00000.txt');
  // Scrolling the page stays responsive: a frame takes well under 100 ms while scrolling.
  const box = page.getByTestId('file-table');
  await box.hover();
  const frames = await page.evaluate(
    () =>
      new Promise<number[]>((resolve) => {
        const body = document.querySelector('[data-testid=file-table] .v-vl');
        const out: number[] = [];
        let last = performance.now();
        const end = last + 2000;
        const tick = (now: number) => {
          out.push(now - last);
          last = now;
          body?.scrollBy(0, 400);
          if (now < end) requestAnimationFrame(tick);
          else resolve(out.sort((a, b) => a - b));
        };
        requestAnimationFrame(tick);
      }),
  );
  const median = frames[Math.floor(frames.length / 2)]!;
  const p95 = frames[Math.floor(frames.length * 0.95)]!;
  console.log(
    `scrolling 10,000 rows (400 px per frame): ${frames.length} frames, median ${median.toFixed(0)} ms, p95 ${p95.toFixed(0)} ms, worst ${frames.at(-1)!.toFixed(0)} ms`,
  );
  // Loose bounds: a shared 2-core machine; this catches a table that renders all rows.
  expect(median).toBeLessThan(100);

  // Search spans the tree.
  await page.getByTestId('search').locator('input').fill('entry-0999');
  await expect(page.getByTestId('item-count')).toHaveText('10 items');
});
