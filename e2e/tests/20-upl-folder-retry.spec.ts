import type { Route } from '@playwright/test';
import { CHUNK_PUT, expect, listFolder, MiB, randomFile, signUpViaApi, test, uniqueName } from './helpers.ts';

test('an interrupted folder upload is listed after a reload; sending it again skips what arrived', async ({
  page,
}, testInfo) => {
  const root = testInfo.outputPath('photos');
  for (let i = 0; i < 80; i++) randomFile(root, `file_${String(i).padStart(4, '0')}.txt`, 1000 + i);
  const big = randomFile(root, 'big.bin', 6 * MiB);
  await signUpViaApi(page.request, uniqueName('fay'));
  page.on('dialog', (d) => void d.accept()); // the "uploads are running" beforeunload prompt
  await page.goto('/files');

  // The first batch of small files gets through; the rest, and the big file's chunks, hang
  // until the page goes away, as on a dropped connection.
  let batches = 0;
  const held: Route[] = [];
  await page.route(/\/api\/files\/batch$/, async (route) => {
    if (batches++ === 0) await route.continue();
    else held.push(route);
  });
  await page.route(CHUNK_PUT, async (route) => void held.push(route));
  await page.getByTestId('upload-folder-input').setInputFiles(root);
  const photosId = async () => (await listFolder(page.request, null)).find((f) => f.name === 'photos')?.id;
  await expect
    .poll(async () => {
      const id = await photosId();
      return id ? (await listFolder(page.request, id)).length : 0;
    })
    .toBeGreaterThan(0);
  await expect.poll(() => held.length).toBeGreaterThan(0);
  // The page goes away while its requests hang. Failing them first would let the page retry
  // them at once, past the routes being removed, and a file could arrive during the reload.
  await page.reload();
  for (const route of held) await route.abort('connectionreset').catch(() => {});
  await page.unrouteAll({ behavior: 'ignoreErrors' });
  const arrived = (await listFolder(page.request, (await photosId())!)).length;
  expect(arrived).toBeLessThan(81);

  // The reload does not hide it: the panel lists the unfinished folder with what arrived.
  const notice = page.getByTestId('unfinished-batch');
  await expect(notice).toHaveAttribute('data-roots', 'photos');
  await expect(notice).toContainText(/\d+ of 81 files arrived/);

  // Choosing the folder again sends only what is missing.
  await notice.getByTestId('unfinished-input').setInputFiles(root);
  const totals = page.getByTestId('upload-totals');
  await expect(totals).toContainText('81 of 81 done', { timeout: 60_000 });
  await expect(totals).toContainText(`${arrived} already there`);
  const listed = await listFolder(page.request, (await photosId())!);
  expect(listed.length).toBe(81);
  expect(listed.filter((f) => / \(\d+\)/.test(f.name))).toEqual([]);
  expect(listed.find((f) => f.name === 'big.bin')?.sha1).toBe(big.sha1);
  await expect(page.getByTestId('unfinished-batches')).toHaveCount(0);

  // The same folder through the page's own button, once more: nothing is stored twice.
  await page.getByTestId('upload-clear-finished').click();
  await page.getByTestId('upload-folder-input').setInputFiles(root);
  await expect(totals).toContainText('81 already there', { timeout: 60_000 });
  expect((await listFolder(page.request, (await photosId())!)).length).toBe(81);
  expect((await listFolder(page.request, null)).filter((f) => f.name.startsWith('photos')).length).toBe(1);

  // A finished folder leaves no notice behind.
  await page.reload();
  await expect(page.getByTestId('file-table')).toBeVisible();
  await expect(page.getByTestId('unfinished-batches')).toHaveCount(0);
});
