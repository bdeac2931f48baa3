import {
  CHUNK_PUT,
  countChunkPuts,
  expect,
  findByName,
  getUpload,
  MiB,
  randomFile,
  resumeEntries,
  screenshot,
  signUpViaApi,
  test,
  uniqueName,
  uploadRow,
} from './helpers.ts';

test('a reload mid-upload resumes from IndexedDB: no re-hashing, only the missing chunks are sent', async ({
  page,
}, testInfo) => {
  const file = randomFile(testInfo.outputPath('files'), 'resume-me.bin', 40 * MiB);
  await signUpViaApi(page.request, uniqueName('bob'));
  page.on('dialog', (d) => void d.accept()); // the "uploads are running" beforeunload prompt

  // Slow every chunk down so the reload reliably lands in the middle of the upload.
  await page.route(CHUNK_PUT, async (route) => {
    await new Promise((r) => setTimeout(r, 400));
    await route.continue().catch(() => {}); // the page may be gone by now
  });
  await page.goto('/files');
  await page.getByTestId('upload-input').setInputFiles(file.path);
  const row = uploadRow(page, 'resume-me.bin');
  await expect(row).toHaveAttribute('data-state', 'uploading', { timeout: 30_000 });

  // Pause stops sending; resume goes on from what the server holds.
  await row.getByTestId('upload-pause').click();
  await expect(row).toHaveAttribute('data-state', 'paused');
  const whilePaused = countChunkPuts(page);
  await page.waitForTimeout(700);
  expect(whilePaused.count).toBe(0);
  whilePaused.stop();
  await row.getByTestId('upload-resume').click();
  await expect(row).toHaveAttribute('data-state', 'uploading');

  // Wait until the server holds some, but far from all, chunks.
  let uploadId = '';
  await expect
    .poll(
      async () => {
        const entry = Object.values(await resumeEntries(page))[0];
        uploadId = entry?.uploadId ?? '';
        return uploadId ? (await getUpload(page.request, uploadId)).receivedChunks.length : 0;
      },
      { timeout: 30_000, intervals: [250] },
    )
    .toBeGreaterThanOrEqual(6);
  await screenshot(page, 'upload-panel');

  await page.unroute(CHUNK_PUT);
  await page.reload();
  await expect(page.getByTestId('pending-uploads')).toContainText('resume-me.bin');
  // Requests cut by the reload are over; what the server holds now is what resuming may skip.
  await page.waitForTimeout(500);
  const before = await getUpload(page.request, uploadId);
  expect(before.chunkCount).toBe(40);
  expect(before.receivedChunks.length).toBeGreaterThan(0);
  expect(before.receivedChunks.length).toBeLessThan(40);

  const puts = countChunkPuts(page);
  await page.getByTestId('upload-input').setInputFiles(file.path);
  await expect(page.getByTestId('resume-dialog')).toBeVisible();
  await expect(page.getByTestId('resume-item')).toHaveAttribute('data-upload-id', uploadId);
  await page.getByTestId('resume-continue').click();

  await expect(row).toHaveAttribute('data-state', 'done', { timeout: 60_000 });
  // The SHA-1 came from IndexedDB: the file was not hashed again.
  await expect(row).toHaveAttribute('data-hashed', '0');
  expect(puts.count).toBe(before.chunkCount - before.receivedChunks.length);
  puts.stop();

  expect((await findByName(page.request, null, 'resume-me.bin')).sha1).toBe(file.sha1);
  expect(await resumeEntries(page)).toEqual({}); // cleaned once done
  await expect(page.getByTestId('pending-uploads')).toHaveCount(0);
});
