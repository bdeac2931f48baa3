import {
  CHUNK_PUT,
  expect,
  fileRow,
  getUpload,
  MiB,
  randomFile,
  resumeEntries,
  signUpViaApi,
  test,
  uniqueName,
} from './helpers.ts';

test('the resume dialog keeps a long name and its size on one line each', async ({ page }, testInfo) => {
  const name = 'quarterly report of the regional offices, every department, final version (2) — scans.bin';
  const file = randomFile(testInfo.outputPath('files'), name, 40 * MiB);
  await signUpViaApi(page.request, uniqueName('rex'));
  page.on('dialog', (d) => void d.accept()); // the "uploads are running" beforeunload prompt
  await page.route(CHUNK_PUT, async (route) => {
    await new Promise((r) => setTimeout(r, 500));
    await route.continue().catch(() => {});
  });
  await page.goto('/files');
  await page.getByTestId('upload-input').setInputFiles(file.path);
  await expect
    .poll(
      async () => {
        const entry = Object.values(await resumeEntries(page))[0];
        return entry?.uploadId ? (await getUpload(page.request, entry.uploadId)).receivedChunks.length : 0;
      },
      { timeout: 30_000, intervals: [250] },
    )
    .toBeGreaterThanOrEqual(1);
  await page.unroute(CHUNK_PUT);
  await page.reload();
  await expect(page.getByTestId('pending-uploads')).toBeVisible();

  await page.getByTestId('upload-input').setInputFiles(file.path);
  const dialog = page.getByTestId('resume-dialog');
  await expect(dialog).toBeVisible();
  const size = dialog.getByText(/^40(\.0+)? MiB$/);
  await expect(size).toBeVisible();
  // One line: as tall as a line of text, and wider than it is tall.
  const box = (await size.boundingBox())!;
  expect(box.height).toBeLessThan(30);
  expect(box.width).toBeGreaterThan(box.height);
  const item = (await dialog.getByTestId('resume-item').boundingBox())!;
  expect(item.height).toBeLessThan(30);
  // The dialog stays inside the window however long the name.
  const modal = (await dialog.boundingBox())!;
  expect(modal.x + modal.width).toBeLessThanOrEqual(1360);
  await page.getByTestId('resume-continue').click();
  await expect(fileRow(page, name)).toBeVisible({ timeout: 60_000 });
});

test('toasts open below the header, not over it', async ({ page }) => {
  await signUpViaApi(page.request, uniqueName('tia'));
  await page.request.post('/api/folders', { data: { name: 'old stuff' } });
  await page.goto('/files');
  await fileRow(page, 'old stuff').click();
  await page.getByTestId('bulk-trash').click();
  const toast = page.locator('.n-message').first();
  await expect(toast).toBeVisible();
  const header = (await page.locator('.n-layout-header').first().boundingBox())!;
  const box = (await toast.boundingBox())!;
  expect(box.y).toBeGreaterThanOrEqual(header.y + header.height);
});
