import {
  CHUNK_PUT,
  expect,
  fileRow,
  randomFile,
  signUpViaApi,
  test,
  uniqueName,
  uploadRow,
} from './helpers.ts';

const MiB = 1024 * 1024;

test('the admin sets a quota; the user sees it, an upload past it is refused before a byte is sent', async ({
  page,
  browser,
  baseURL,
}, testInfo) => {
  const name = uniqueName('quinn');
  await signUpViaApi(page.request, name);
  const small = await page.request.post('/api/files', {
    multipart: {
      file: { name: 'kept.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(300 * 1024, 7) },
    },
  });
  expect(small.status()).toBe(201);

  // The admin gives this user 0.01 GiB on the Users page.
  const adminContext = await browser.newContext({ baseURL });
  const admin = await adminContext.newPage();
  const creds = JSON.parse(process.env.DFS_E2E_ADMIN ?? '{}') as { username: string; password: string };
  expect((await admin.request.post('/api/auth/signin', { data: creds })).status()).toBe(200);
  await admin.goto('/admin/users');
  const row = admin.locator(`[data-testid=user-row][data-name="${name}"]`);
  await expect(row).toContainText('300.0 KiB');
  await row.getByTestId(`quota-${name}`).click();
  await admin.getByTestId('quota-custom').click();
  await admin.getByTestId('quota-gib').locator('input').fill('0.01');
  await admin.getByRole('button', { name: 'Save' }).click();
  await expect(row).toContainText('10.2 MiB');
  await adminContext.close();

  // The user sees what they use against the quota in their menu.
  await page.goto('/files');
  await page.getByTestId('user-menu').click();
  await expect(page.getByTestId('usage')).toContainText('300.0 KiB of 10.2 MiB used');
  await page.keyboard.press('Escape');

  // A 12 MiB file is refused at the start: the server says quota_exceeded, no chunk goes out.
  const puts: string[] = [];
  page.on('request', (r) => {
    if (CHUNK_PUT.test(r.url())) puts.push(r.url());
  });
  const big = randomFile(testInfo.outputPath('files'), 'too-big.bin', 12 * MiB);
  await page.getByTestId('upload-input').setInputFiles(big.path);
  await expect(uploadRow(page, 'too-big.bin')).toContainText('quota is full');
  expect(puts).toEqual([]);
  await expect(fileRow(page, 'too-big.bin')).toHaveCount(0);
});

test('empty the trash in one go', async ({ page }) => {
  await signUpViaApi(page.request, uniqueName('tess'));
  for (const n of ['x.txt', 'y.txt']) {
    const res = await page.request.post('/api/files', {
      multipart: { file: { name: n, mimeType: 'text/plain', buffer: Buffer.from(n) } },
    });
    await page.request.delete(`/api/files/${(await res.json()).file.id}`);
  }
  await page.goto('/trash');
  await expect(page.locator('[data-testid=trash-row]')).toHaveCount(2);
  await page.getByTestId('trash-empty-all').click();
  await page.getByRole('button', { name: 'Empty trash' }).last().click();
  await expect(page.getByTestId('trash-empty')).toBeVisible();
  expect((await (await page.request.get('/api/trash')).json()).total).toBe(0);
});
