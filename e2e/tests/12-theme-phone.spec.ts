import { expect, fileRow, screenshot, signUpViaApi, test, uniqueName } from './helpers.ts';

const LONG = 'Quarterly financial report for the board meeting — final version.pdf';

async function seed(page: import('@playwright/test').Page) {
  await signUpViaApi(page.request, uniqueName('dora'));
  await page.request.post('/api/folders', { data: { name: 'Holiday photos 2026' } });
  for (const name of [LONG, 'notes.txt']) {
    const res = await page.request.post('/api/files', {
      multipart: { file: { name, mimeType: 'application/octet-stream', buffer: Buffer.from(name) } },
    });
    expect(res.status()).toBe(201);
  }
}

const background = (page: import('@playwright/test').Page) =>
  page.evaluate(() => {
    const [r = 0, g = 0, b = 0] = (getComputedStyle(document.body).backgroundColor.match(/\d+/g) ?? []).map(
      Number,
    );
    return (r + g + b) / 3;
  });

test('dark mode follows the system, can be chosen in the user menu, and is remembered', async ({
  browser,
  baseURL,
}) => {
  const context = await browser.newContext({ baseURL, colorScheme: 'dark' });
  const page = await context.newPage();
  await seed(page);
  await page.goto('/files');
  await expect(fileRow(page, 'notes.txt')).toBeVisible();
  // Follows the system by default.
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  // Naive UI fades the body colour; wait for it to settle.
  await expect.poll(() => background(page)).toBeLessThan(60);
  await screenshot(page, 'files-dark');

  // Chosen in the user menu: light, although the system is dark; still light after a reload.
  await page.getByTestId('user-menu').click();
  await page.getByTestId('theme-light').click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
  await expect.poll(() => background(page)).toBeGreaterThan(200);
  await page.reload();
  await expect(fileRow(page, 'notes.txt')).toBeVisible();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');

  // Back to following the system; the system turning light is followed at once.
  await page.getByTestId('user-menu').click();
  await page.getByTestId('theme-system').click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await page.emulateMedia({ colorScheme: 'light' });
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
  await context.close();
});

test('on a phone (390×844) names stay visible, the header fits, and no keyboard hints show', async ({
  browser,
  baseURL,
}) => {
  const context = await browser.newContext({
    baseURL,
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
    deviceScaleFactor: 2,
  });
  const page = await context.newPage();
  await seed(page);
  await page.goto('/files');
  const row = fileRow(page, LONG);
  await expect(row).toBeVisible();

  // Every visible row's name has room, and the long one shows its start.
  const names = page.locator('[data-testid=file-row] .fname, [data-testid=file-row] .flink');
  await expect(names).toHaveCount(3);
  for (const box of await names.evaluateAll((els) => els.map((el) => el.getBoundingClientRect().width))) {
    expect(box).toBeGreaterThan(120);
  }
  const name = row.locator('.fname');
  await expect(name).toBeVisible();
  expect(await name.evaluate((el) => el.textContent)).toBe(LONG);
  // Size and date ride under the name instead of taking columns.
  await expect(row.locator('.fsub')).toContainText('B ·');
  await expect(page.locator('th').filter({ hasText: 'Created' })).toHaveCount(0);

  // Nothing overflows sideways; the user menu is inside the screen and opens.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  const menu = await page.getByTestId('user-menu').boundingBox();
  expect((menu?.x ?? 999) + (menu?.width ?? 0)).toBeLessThanOrEqual(390);
  await expect(page.getByTestId('keyboard-hint')).toHaveCount(0);
  await screenshot(page, 'files-phone');

  // The language lives in the user menu on a phone, one tap away (a group, not a submenu).
  await page.getByTestId('user-menu').click();
  await page.locator('.n-dropdown-option').getByText('简体中文').click();
  await expect(page.getByTestId('upload-files')).toHaveAttribute('aria-label', '上传文件');
  await context.close();
});
