import { readFileSync } from 'node:fs';
import {
  expect,
  fileRow,
  MiB,
  randomFile,
  screenshot,
  signUpViaApi,
  test,
  uniqueName,
  uploadViaApi,
} from './helpers.ts';

test('a password share link works in a fresh browser context', async ({ page, browser }, testInfo) => {
  await signUpViaApi(page.request, uniqueName('grace'));
  const src = randomFile(testInfo.outputPath('files'), 'secret-plans.bin', 2 * MiB + 9);
  await uploadViaApi(page.request, src.path);

  await page.goto('/files');
  const row = fileRow(page, 'secret-plans.bin');
  await row.click();
  await page.getByTestId('bulk-share').click();
  const dialog = page.getByTestId('share-dialog');
  await expect(dialog).toBeVisible();
  await dialog.getByTestId('share-password').locator('input').fill('open sesame');
  await dialog.getByTestId('share-max').locator('input').fill('5');
  await dialog.getByTestId('share-create').click();
  await expect(dialog.getByTestId('share-qr')).toBeVisible();
  const url = await dialog.getByTestId('share-url').locator('input').inputValue();
  expect(url).toMatch(/\/s\/[^/]+$/);
  await expect(dialog.getByTestId('share-list')).toContainText(url);
  await screenshot(page, 'share-dialog');

  // The recipient: no account, no cookies.
  const visitor = await browser.newContext({ acceptDownloads: true });
  const other = await visitor.newPage();
  const contentRequests: string[] = [];
  other.on('request', (r) => {
    if (r.url().includes('/content')) contentRequests.push(r.url());
  });
  await other.goto(url);
  await expect(other.getByTestId('share-name')).toHaveText('secret-plans.bin');
  await expect(other.getByTestId('share-size')).toHaveText('2.00 MiB');

  await other.getByTestId('public-password').locator('input').fill('wrong password');
  await other.getByTestId('public-download').click();
  await expect(other.getByTestId('public-error')).toContainText('Wrong password');

  await other.getByTestId('public-password').locator('input').fill('open sesame');
  const [download] = await Promise.all([
    other.waitForEvent('download'),
    other.getByTestId('public-download').click(),
  ]);
  expect(download.suggestedFilename()).toBe('secret-plans.bin');
  const saved = testInfo.outputPath('shared.bin');
  await download.saveAs(saved);
  expect(readFileSync(saved).equals(readFileSync(src.path))).toBe(true);
  // The password travelled in a header, never in the URL.
  for (const u of contentRequests) expect(u).not.toContain('sesame');
  await visitor.close();

  // Revoking the link makes it dead for everyone.
  await dialog.getByTestId('share-revoke').first().click();
  await page
    .getByRole('button', { name: /confirm|ok|yes/i })
    .last()
    .click();
  const gone = await browser.newContext();
  const p2 = await gone.newPage();
  await p2.goto(url);
  await expect(p2.getByTestId('share-gone')).toBeVisible();
  await gone.close();
});
