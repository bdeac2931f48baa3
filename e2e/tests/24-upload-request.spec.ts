import {
  expect,
  fileRow,
  findByName,
  MiB,
  randomFile,
  screenshot,
  signUpViaApi,
  test,
  uniqueName,
} from './helpers.ts';

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
  // A link that does not exist says so, in the page's heading place.
  await other.goto('/drop/no-such-link-at-all');
  await expect(other.getByTestId('drop-gone')).toContainText('This link does not exist.');
  await expect(other.getByRole('heading', { level: 1 })).toHaveText('Upload files');
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

/** A chunk sent through an upload request's link. */
const DROP_CHUNK = /\/api\/public\/shares\/[^/]+\/uploads\/[^/]+\/chunks\/(\d+)$/;

test('a big file goes through the link in chunks: a dropped chunk is sent again, a reload resumes', async ({
  page,
  browser,
}, testInfo) => {
  await signUpViaApi(page.request, uniqueName('otto'));
  const made = await page.request.post('/api/folders', { data: { name: 'Big inbox' } });
  const inbox = (await made.json()).file as { id: string };
  const link = await page.request.post(`/api/files/${inbox.id}/shares`, { data: { kind: 'upload' } });
  const url = (await link.json()).share.url as string;
  // Six chunks of the suite's 1 MiB: past the one-request size, so the resumable path takes it.
  const file = randomFile(testInfo.outputPath('files'), 'scan.tiff', 6 * MiB);

  const visitor = await browser.newContext();
  const drop = await visitor.newPage();
  const sent: number[] = [];
  const stored = new Set<number>();
  drop.on('request', (r) => {
    const m = DROP_CHUNK.exec(r.url());
    if (m && r.method() === 'PUT') sent.push(Number(m[1]));
  });
  drop.on('response', (r) => {
    const m = DROP_CHUNK.exec(r.url());
    if (m && r.status() === 204) stored.add(Number(m[1]));
  });
  // Chunk 3's first attempt loses its connection; chunk 5 hangs until the page is reloaded.
  let dropped = false;
  let holding = true;
  await drop.route(DROP_CHUNK, async (route) => {
    const chunk = route.request().url();
    if (chunk.endsWith('/chunks/3') && !dropped) {
      dropped = true;
      return route.abort('connectionreset');
    }
    if (chunk.endsWith('/chunks/5') && holding) return;
    return route.continue();
  });
  await drop.goto(url);
  await drop.getByTestId('drop-uploader').locator('input').fill('Ilse');
  await drop.locator('input[type=file]').setInputFiles(file.path);
  await expect.poll(() => stored.size, { timeout: 30_000 }).toBe(5);
  expect(sent.filter((i) => i === 3)).toHaveLength(2);

  // A reload: the page remembers the unfinished upload; the same file picked again resumes it.
  await drop.reload();
  holding = false;
  await expect(drop.getByTestId('drop-unfinished')).toContainText('scan.tiff');
  sent.length = 0;
  await drop.getByTestId('drop-uploader').locator('input').fill('Ilse');
  await drop.locator('input[type=file]').setInputFiles(file.path);
  await expect(drop.getByTestId('drop-sent')).toContainText('1 file uploaded', { timeout: 30_000 });
  // Only what the server lacked went again.
  expect(sent).toEqual([5]);
  await expect(drop.getByTestId('drop-unfinished')).toHaveCount(0);
  await visitor.close();

  const inFolder = await findByName(page.request, inbox.id, 'scan.tiff');
  expect(inFolder).toMatchObject({ size: 6 * MiB, sha1: file.sha1 });
  const history = await (await page.request.get('/api/history', { params: { folderId: inbox.id } })).json();
  expect(history.items[0]).toMatchObject({ action: 'created', actor: { type: 'share', name: 'Ilse' } });
});
