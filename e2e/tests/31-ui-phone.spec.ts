import type { Browser, Page } from '@playwright/test';
import { expect, fileRow, screenshot, signUpViaApi, test, uniqueName } from './helpers.ts';

const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

async function phone(browser: Browser, baseURL: string | undefined): Promise<Page> {
  const context = await browser.newContext({ baseURL, ...PHONE });
  const page = await context.newPage();
  await signUpViaApi(page.request, uniqueName('tap'));
  const folder = await page.request.post('/api/folders', { data: { name: 'Holiday photos' } });
  expect(folder.status()).toBe(201);
  for (const name of ['notes.txt', 'todo.txt', 'archive.bin']) {
    const res = await page.request.post('/api/files', {
      multipart: { file: { name, mimeType: 'application/octet-stream', buffer: Buffer.from(`${name}\n`) } },
    });
    expect(res.status()).toBe(201);
  }
  await page.goto('/files');
  await expect(fileRow(page, 'notes.txt')).toBeVisible();
  return page;
}

/** Taps a row away from its name: on its right half, where only the row itself is. */
async function tapRow(page: Page, name: string): Promise<void> {
  const box = await fileRow(page, name).locator('.fsub').boundingBox();
  expect(box).not.toBeNull();
  await page.touchscreen.tap(box!.x + box!.width - 4, box!.y + box!.height / 2);
}

test('on a phone a tap opens: a file in the viewer, a folder anywhere on its row', async ({
  browser,
  baseURL,
}) => {
  const page = await phone(browser, baseURL);
  await tapRow(page, 'notes.txt');
  await expect(page.getByTestId('preview')).toBeVisible();
  await expect(page.getByTestId('preview-text')).toHaveText('notes.txt\n');
  await expect(page.getByTestId('selection-bar')).toHaveCount(0);
  await page.getByTestId('preview-close').tap();
  await expect(page.getByTestId('preview')).toHaveCount(0);
  // The viewer's backdrop fades out after it: a tap before that lands on the backdrop.
  await expect(page.locator('.n-modal-mask')).toHaveCount(0);

  // The folder opens from its row's date line, not only from its name.
  await tapRow(page, 'Holiday photos');
  await expect(page.getByTestId('crumb-Holiday photos')).toBeVisible();
  await page.context().close();
});

test('on a phone the check boxes select; then taps add to the selection, in a bar of one row', async ({
  browser,
  baseURL,
}) => {
  const page = await phone(browser, baseURL);
  await fileRow(page, 'notes.txt').locator('.n-checkbox').tap();
  const bar = page.getByTestId('selection-bar');
  const count = bar.getByTestId('selection-count');
  await expect(count).toHaveText('1');
  // While something is selected, a tap selects more instead of opening.
  await tapRow(page, 'todo.txt');
  await expect(count).toHaveText('2');
  await expect(page.getByTestId('preview')).toHaveCount(0);
  await tapRow(page, 'archive.bin');
  await expect(count).toHaveText('3');
  await tapRow(page, 'archive.bin');
  await expect(count).toHaveText('2');

  // One row: every button shares the first one's line, each says what it does, all inside the screen.
  const buttons = bar.locator('.n-button');
  const boxes = await buttons.evaluateAll((els) =>
    els.map((el) => {
      const r = el.getBoundingClientRect();
      return { top: r.top, bottom: r.bottom, left: r.left, right: r.right };
    }),
  );
  expect(boxes.length).toBeGreaterThanOrEqual(5);
  for (const b of boxes) {
    expect(b.top).toBeLessThan(boxes[0]!.bottom);
    expect(b.left).toBeGreaterThanOrEqual(0);
    expect(b.right).toBeLessThanOrEqual(390);
  }
  for (const id of ['bulk-download', 'bulk-share', 'bulk-move', 'bulk-trash']) {
    const label = bar.getByTestId(id).locator('.btn-label');
    await expect(label).toBeVisible();
    expect((await label.textContent())?.trim().length ?? 0).toBeGreaterThan(1);
    // The word is not cut: it lies inside its button.
    const inside = await label.evaluate((el) => {
      const r = el.getBoundingClientRect();
      const b = el.closest('.n-button')!.getBoundingClientRect();
      return r.left >= b.left && r.right <= b.right;
    });
    expect(inside, id).toBe(true);
  }
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await screenshot(page, 'files-phone-selection');
  await page.getByTestId('clear-selection').tap();
  await expect(bar).toHaveCount(0);
  await page.context().close();
});

test('on a phone the upload and new-folder buttons show their words', async ({ browser, baseURL }) => {
  const page = await phone(browser, baseURL);
  const words = {
    'upload-files': 'Upload files',
    'upload-folder': 'Upload folder',
    'new-folder': 'New folder',
  };
  for (const [id, word] of Object.entries(words)) {
    const label = page.getByTestId(id).locator('.btn-label');
    await expect(label).toBeVisible();
    await expect(label).toHaveText(word);
    expect(await label.evaluate((el) => el.scrollWidth <= el.clientWidth + 1)).toBe(true);
    const box = await page.getByTestId(id).boundingBox();
    expect(box!.x + box!.width).toBeLessThanOrEqual(390);
  }
  await screenshot(page, 'files-phone-actions');
  await page.context().close();
});
