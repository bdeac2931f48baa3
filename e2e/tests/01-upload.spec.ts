import { mkdirSync } from 'node:fs';
import path from 'node:path';
import {
  expect,
  fileRow,
  findByName,
  listFolder,
  MiB,
  PASSWORD,
  randomFile,
  screenshot,
  test,
  uniqueName,
} from './helpers.ts';

test('sign up, upload a 40 MiB file, a dropped file and a folder; the server has the same bytes', async ({
  page,
}, testInfo) => {
  const dir = testInfo.outputPath('files');
  const big = randomFile(dir, 'big-40MiB.bin', 40 * MiB);
  const folder = path.join(dir, 'album');
  mkdirSync(path.join(folder, 'sub', 'deeper'), { recursive: true });
  const a = randomFile(folder, 'a.bin', 300 * 1024);
  const b = randomFile(path.join(folder, 'sub'), 'b.bin', 2 * MiB + 17);
  const c = randomFile(path.join(folder, 'sub', 'deeper'), 'c.txt', 1234);
  const empty = randomFile(path.join(folder, 'sub'), 'empty.txt', 0);

  // Sign-up through the UI; the session must survive a reload.
  await page.goto('/');
  await expect(page).toHaveURL(/\/signin/);
  await screenshot(page, 'sign-in');
  await page.getByTestId('to-signup').click();
  const username = uniqueName('alice');
  await page.locator('input[name=username]').fill(username);
  await page.locator('input[name=password]').fill(PASSWORD);
  await page.locator('input[name=confirm]').fill(PASSWORD);
  await page.getByTestId('auth-submit').click();
  await expect(page).toHaveURL(/\/files/);
  await expect(page.getByTestId('empty-state')).toBeVisible();
  await page.reload();
  await expect(page.getByTestId('user-menu')).toContainText(username);

  // The picker button.
  await page.getByTestId('upload-input').setInputFiles(big.path);
  // A whole folder through the webkitdirectory input: its structure is recreated.
  await page.getByTestId('upload-folder-input').setInputFiles(folder);
  // A drop anywhere on the page (a synthesized DataTransfer, as a browser hands it over).
  await page.evaluate(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['dropped by drag and drop\n'], 'dropped.txt', { type: 'text/plain' }));
    for (const type of ['dragenter', 'dragover', 'drop']) {
      document.body.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  });

  await expect(page.getByTestId('upload-panel')).toBeVisible();
  // The panel's list shows a few rows at a time (it leaves the file table its room): the
  // summary counts every file, and each file's bytes are checked on the server below.
  await expect(page.getByTestId('upload-totals')).toContainText('6 of 6 done', { timeout: 60_000 });
  await expect(page.getByTestId('upload-totals')).not.toContainText('failed');
  await expect(fileRow(page, 'big-40MiB.bin')).toBeVisible();
  await expect(fileRow(page, 'album')).toBeVisible();
  await screenshot(page, 'file-browser');

  const req = page.request;
  expect((await findByName(req, null, 'big-40MiB.bin')).sha1).toBe(big.sha1);
  expect((await findByName(req, null, 'dropped.txt')).size).toBe('dropped by drag and drop\n'.length);
  const album = await findByName(req, null, 'album');
  expect(album.kind).toBe('folder');
  expect((await findByName(req, album.id, 'a.bin')).sha1).toBe(a.sha1);
  const sub = await findByName(req, album.id, 'sub');
  expect((await findByName(req, sub.id, 'b.bin')).sha1).toBe(b.sha1);
  expect((await findByName(req, sub.id, 'empty.txt')).sha1).toBe(empty.sha1);
  const deeper = await findByName(req, sub.id, 'deeper');
  expect((await findByName(req, deeper.id, 'c.txt')).sha1).toBe(c.sha1);
  expect((await listFolder(req, album.id)).map((f) => f.name).sort()).toEqual(['a.bin', 'sub']);

  // Folder navigation: the URL carries the folder, breadcrumbs lead back.
  await fileRow(page, 'album').locator('a').click();
  await expect(page).toHaveURL(new RegExp(`/files/${album.id}$`));
  await fileRow(page, 'sub').locator('a').click();
  await expect(page.getByTestId('crumb-sub')).toBeVisible();
  await expect(fileRow(page, 'b.bin')).toBeVisible();
  await page.getByTestId('crumb-album').click();
  await expect(page).toHaveURL(new RegExp(`/files/${album.id}$`));

  // Search covers the whole tree.
  await page.getByTestId('search').locator('input').fill('c.t');
  await expect(fileRow(page, 'c.txt')).toBeVisible();
  await expect(page).toHaveURL(/q=c\.t/);

  // Sign out ends the session.
  await page.getByTestId('user-menu').click();
  await page.getByText('Sign out').click();
  await expect(page).toHaveURL(/\/signin/);
  expect((await page.request.get('/api/auth/me')).status()).toBe(401);
});
