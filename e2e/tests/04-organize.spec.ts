import {
  expect,
  fileRow,
  findByName,
  listFolder,
  randomFile,
  screenshot,
  signUpViaApi,
  test,
  uniqueName,
  uploadViaApi,
} from './helpers.ts';

test('rename inline, move with the folder picker, trash and restore', async ({ page }, testInfo) => {
  await signUpViaApi(page.request, uniqueName('erin'));
  const docsRes = await page.request.post('/api/folders', { data: { name: 'Docs' } });
  expect(docsRes.status()).toBe(201);
  const docs = (await docsRes.json()).file as { id: string };
  const src = randomFile(testInfo.outputPath('files'), 'note.txt', 4096);
  const uploaded = await uploadViaApi(page.request, src.path);

  await page.goto('/files');
  const row = (name: string) => fileRow(page, name);
  await expect(row('note.txt')).toBeVisible();

  // Rename inline: the row's menu, then type and press Enter.
  await row('note.txt').getByTestId('row-menu').click();
  await page.locator('.n-dropdown-menu').getByText('Rename', { exact: true }).click();
  const input = page.getByTestId('rename-input').locator('input');
  await expect(input).toBeFocused();
  await input.fill('report.txt');
  await input.press('Enter');
  await expect(row('report.txt')).toBeVisible();
  await expect(row('note.txt')).toHaveCount(0);
  expect((await findByName(page.request, null, 'report.txt')).id).toBe(uploaded.id);

  // Keyboard: F2 renames the row under the cursor too.
  await row('report.txt').click();
  await page.keyboard.press('F2');
  await page.getByTestId('rename-input').locator('input').fill('report-final.txt');
  await page.keyboard.press('Enter');
  await expect(row('report-final.txt')).toBeVisible();

  // Move into Docs through the folder picker dialog.
  await row('report-final.txt').click();
  await page.getByTestId('bulk-move').click();
  const dialog = page.getByTestId('move-dialog');
  await expect(dialog).toBeVisible();
  await dialog.getByText('Docs', { exact: true }).click();
  await page.getByTestId('move-confirm').click();
  await expect(row('report-final.txt')).toHaveCount(0);
  expect((await findByName(page.request, docs.id, 'report-final.txt')).id).toBe(uploaded.id);

  // Trash it from inside Docs.
  await row('Docs').locator('a').click();
  await expect(row('report-final.txt')).toBeVisible();
  await row('report-final.txt').click();
  await page.getByTestId('bulk-trash').click();
  await expect(row('report-final.txt')).toHaveCount(0);
  // The toast's Undo brings it straight back; then trash it again for the trash view.
  await page.getByTestId('undo-trash').click();
  await expect(row('report-final.txt')).toBeVisible();
  await row('report-final.txt').click();
  await page.getByTestId('bulk-trash').click();
  await expect(row('report-final.txt')).toHaveCount(0);
  expect(await listFolder(page.request, docs.id)).toEqual([]);

  // Restore it from the trash view.
  await page.getByTestId('nav-trash').click();
  const trashed = page.locator('[data-testid=trash-row][data-name="report-final.txt"]');
  await expect(trashed).toBeVisible();
  await screenshot(page, 'trash');
  await trashed.getByTestId('trash-restore').click();
  await expect(page.getByTestId('trash-empty')).toBeVisible();
  expect((await findByName(page.request, docs.id, 'report-final.txt')).sha1).toBe(src.sha1);

  // Delete forever: trash the Docs folder, then purge it.
  await page.getByTestId('nav-files').click();
  await row('Docs').click();
  await page.keyboard.press('Delete');
  await expect(row('Docs')).toHaveCount(0);
  await page.getByTestId('nav-trash').click();
  await page.locator('[data-testid=trash-row][data-name="Docs"]').getByTestId('trash-purge').click();
  await page.getByRole('button', { name: 'Delete forever' }).last().click();
  await expect(page.getByTestId('trash-empty')).toBeVisible();
  expect((await page.request.get(`/api/files/${docs.id}`)).status()).toBe(404);
});
