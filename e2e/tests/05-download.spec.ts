import { readFileSync } from 'node:fs';
import { expect, fileRow, MiB, randomFile, signUpViaApi, test, uniqueName, uploadViaApi } from './helpers.ts';

test('download from the file browser returns the same bytes', async ({ page }, testInfo) => {
  await signUpViaApi(page.request, uniqueName('frank'));
  const src = randomFile(testInfo.outputPath('files'), 'photo 照片.bin', 3 * MiB + 123);
  await uploadViaApi(page.request, src.path);

  await page.goto('/files');
  const row = fileRow(page, 'photo 照片.bin');
  await expect(row).toBeVisible();
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    row.getByTestId('row-download').click(),
  ]);
  expect(download.suggestedFilename()).toBe('photo 照片.bin');
  const saved = testInfo.outputPath('downloaded.bin');
  await download.saveAs(saved);
  expect(readFileSync(saved).equals(readFileSync(src.path))).toBe(true);
});
