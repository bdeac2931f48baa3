import { readFileSync } from 'node:fs';
import {
  countChunkPuts,
  expect,
  findByName,
  MiB,
  randomFile,
  signUpViaApi,
  test,
  uniqueName,
  uploadRow,
  uploadViaApi,
} from './helpers.ts';

test('a second user uploading the same bytes gets an instant upload: no chunk is sent', async ({
  page,
  playwright,
  baseURL,
}, testInfo) => {
  const file = randomFile(testInfo.outputPath('files'), 'shared-bytes.bin', 6 * MiB + 5);

  // The first user stores the content (in their own, separate session).
  const first = await playwright.request.newContext({ baseURL });
  await signUpViaApi(first, uniqueName('carol'));
  await uploadViaApi(first, file.path);
  await first.dispose();

  // The second user picks the same file under another name: a proof of ownership, no bytes.
  await signUpViaApi(page.request, uniqueName('dave'));
  await page.goto('/files');
  const puts = countChunkPuts(page);
  await page.getByTestId('upload-input').setInputFiles({
    name: 'my-copy.bin',
    mimeType: 'application/octet-stream',
    buffer: readFileSync(file.path),
  });
  const row = uploadRow(page, 'my-copy.bin');
  await expect(row).toHaveAttribute('data-state', 'done', { timeout: 30_000 });
  await expect(row.getByTestId('upload-instant')).toBeVisible();
  await expect(row.getByTestId('upload-instant')).toHaveText(/instant/);
  expect(puts.count).toBe(0);
  puts.stop();

  const mine = await findByName(page.request, null, 'my-copy.bin');
  expect(mine.sha1).toBe(file.sha1);
  expect(mine.size).toBe(6 * MiB + 5);
});
