import { expect, fileRow, findByName, screenshot, signUpViaApi, test, uniqueName } from './helpers.ts';

test('an upload request: the owner makes it on a folder, a visitor drops a file, the owner has it', async ({
  page,
  browser,
}) => {
  await signUpViaApi(page.request, uniqueName('olive'));
  const made = await page.request.post('/api/folders', { data: { name: 'Inbox' } });
  expect(made.status()).toBe(201);
  const inbox = (await made.json()).file as { id: string };

  await page.goto('/files');
  await fileRow(page, 'Inbox').getByTestId('row-menu').click();
  await page.locator('.n-dropdown-menu').getByText('Request files', { exact: true }).click();
  const dialog = page.getByTestId('share-dialog');
  await expect(dialog).toContainText('Request files into “Inbox”');
  await dialog.getByTestId('share-password').locator('input').fill('letmein');
  await dialog.getByTestId('share-max-bytes').locator('input').fill('5');
  await dialog.getByTestId('share-create').click();
  const url = await dialog.getByTestId('share-url').locator('input').inputValue();
  expect(url).toMatch(/\/drop\/[^/]+$/);
  await expect(dialog.getByTestId('share-list')).toContainText(url);

  // The visitor: no account, no cookies.
  const visitor = await browser.newContext();
  const other = await visitor.newPage();
  await other.goto(url);
  await expect(other.getByTestId('drop-folder')).toHaveText('Inbox');
  await expect(other.getByTestId('drop-left')).toContainText('5.00 MiB');
  await other.getByTestId('drop-uploader').locator('input').fill('Walter');
  const picker = other.locator('input[type=file]');

  await other.getByTestId('drop-password').locator('input').fill('wrong');
  await picker.setInputFiles({ name: 'first try.txt', mimeType: 'text/plain', buffer: Buffer.from('nope') });
  await expect(other.getByTestId('drop-error')).toContainText('Wrong password');

  await other.getByTestId('drop-password').locator('input').fill('letmein');
  const bytes = Buffer.alloc(300_000, 7);
  await picker.setInputFiles({ name: 'photo.jpg', mimeType: 'image/jpeg', buffer: bytes });
  await expect(other.getByTestId('drop-sent')).toContainText('1 file uploaded');
  await screenshot(other, 'drop-page');
  await visitor.close();

  // The owner sees the file in the folder, and who sent it.
  await page.goto(`/files/${inbox.id}`);
  await expect(fileRow(page, 'photo.jpg')).toBeVisible();
  expect((await findByName(page.request, inbox.id, 'photo.jpg')).size).toBe(bytes.length);
  const history = await (await page.request.get('/api/history', { params: { folderId: inbox.id } })).json();
  expect(history.items[0]).toMatchObject({ action: 'created', actor: { type: 'share', name: 'Walter' } });
  await page.goto('/links');
  await expect(page.getByText(url).first()).toBeVisible();
});
