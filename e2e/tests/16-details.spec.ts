import { expect, fileRow, screenshot, signUpViaApi, test, uniqueName } from './helpers.ts';

test('the details panel tells size, SHA-1, place, copies and links; a folder tells what it holds', async ({
  page,
}) => {
  await signUpViaApi(page.request, uniqueName('dina'));
  const folder = async (name: string, parentId?: string) =>
    (await (await page.request.post('/api/folders', { data: { name, parentId } })).json()).file;
  const put = async (name: string, bytes: Buffer, parentId: string) =>
    (
      await (
        await page.request.post(`/api/files?parentId=${parentId}`, {
          multipart: { file: { name, mimeType: 'application/octet-stream', buffer: bytes } },
        })
      ).json()
    ).file;
  const work = await folder('Work');
  const sub = await folder('Drafts', work.id);
  const report = await put('report.txt', Buffer.alloc(3000, 1), sub.id);
  await put('plan.txt', Buffer.alloc(2000, 2), work.id);
  await page.request.post(`/api/files/${report.id}/shares`, { data: { maxDownloads: 3 } });

  await page.goto('/files');
  await fileRow(page, 'Work').getByTestId('row-menu').click();
  await page.locator('.n-dropdown-menu').getByText('Details', { exact: true }).click();
  const panel = page.getByTestId('details');
  await expect(panel.getByTestId('details-size')).toHaveText('4.88 KiB in 2 files and 1 folders');
  await panel.getByRole('button', { name: 'close' }).click();

  // A file, by keyboard: the cursor on its row, then I.
  await page.goto(`/files/${sub.id}`);
  await fileRow(page, 'report.txt').click();
  await page.keyboard.press('i');
  await expect(panel.getByTestId('details-sha1')).toHaveText(report.sha1);
  await expect(panel.getByTestId('details-size')).toContainText('3,000 B');
  await expect(panel.getByTestId('details-location')).toHaveText('My files / Work / Drafts');
  const nodes = (await (await page.request.get(`/api/contents/${report.sha1}`)).json()).replicas as {
    nodeName: string;
  }[];
  for (const n of nodes) await expect(panel.getByTestId('details-replicas')).toContainText(n.nodeName);
  await expect(panel.getByTestId('details-links')).toContainText('/s/');
  await expect(panel.getByTestId('details-links')).toContainText('0/3');
  await screenshot(page, 'details');
});

test('a selection of files is shared in one go: one link per file, folders left out', async ({ page }) => {
  await signUpViaApi(page.request, uniqueName('sam'));
  await page.request.post('/api/folders', { data: { name: 'Box' } });
  for (const name of ['p.txt', 'q.txt']) {
    await page.request.post('/api/files', {
      multipart: { file: { name, mimeType: 'text/plain', buffer: Buffer.from(name) } },
    });
  }
  await page.goto('/files');
  await page.getByTestId('file-table').click();
  await page.keyboard.press('Control+a');
  await page.getByTestId('bulk-share').click();
  const dialog = page.getByTestId('bulk-share-dialog');
  await expect(dialog).toContainText('1 folder is left out');
  await dialog.getByTestId('bulk-share-create').click();
  const links = dialog.getByTestId('bulk-share-links');
  await expect(links.locator('li')).toHaveCount(2);
  const mine = (await (await page.request.get('/api/shares')).json()).items as {
    name: string;
    url: string;
  }[];
  expect(mine.map((s) => s.name).sort()).toEqual(['p.txt', 'q.txt']);
  for (const s of mine) await expect(links).toContainText(s.url);
});
