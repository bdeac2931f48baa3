import { createHash } from 'node:crypto';
import type { Page } from '@playwright/test';
import { expect, fileRow, findByName, screenshot, signUpViaApi, test, uniqueName } from './helpers.ts';

const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');

function pick(page: Page, name: string, text: string) {
  return page
    .getByTestId('upload-input')
    .setInputFiles({ name, mimeType: 'text/plain', buffer: Buffer.from(text) });
}

async function openDetails(page: Page, name: string) {
  await fileRow(page, name).getByTestId('row-menu').click();
  await page.locator('.n-dropdown-menu').getByText('Details', { exact: true }).click();
  return page.getByTestId('details');
}

test('"Replace or keep both?", the versions in the details panel, and a restore', async ({ page }) => {
  await signUpViaApi(page.request, uniqueName('vera'));
  await page.goto('/files');
  const OLD = 'the first draft\n';
  const NEW = 'the second draft, longer\n';

  await pick(page, 'draft.txt', OLD);
  await expect(fileRow(page, 'draft.txt')).toBeVisible();
  const first = (await findByName(page.request, null, 'draft.txt'))!;
  expect(first.sha1).toBe(sha1(OLD));

  // The same name again: the app asks before sending anything.
  await pick(page, 'draft.txt', NEW);
  const dialog = page.getByTestId('conflict-dialog');
  await expect(dialog).toBeVisible();
  await expect(dialog.getByTestId('conflict-name')).toContainText('draft.txt');
  await screenshot(page, 'name-conflict');
  await dialog.getByTestId('conflict-replace').click();
  await expect(dialog).toBeHidden();
  await expect.poll(async () => (await findByName(page.request, null, 'draft.txt'))?.sha1).toBe(sha1(NEW));
  // Replaced in place: same entry, nothing added beside it.
  expect((await findByName(page.request, null, 'draft.txt'))?.id).toBe(first.id);
  await expect(page.locator('[data-testid="file-row"]')).toHaveCount(1);

  const panel = await openDetails(page, 'draft.txt');
  const versions = panel.getByTestId('version');
  await expect(versions).toHaveCount(2);
  await expect(versions.nth(0)).toHaveAttribute('data-sha1', sha1(NEW));
  await expect(versions.nth(0).getByTestId('version-current')).toBeVisible();
  await expect(versions.nth(1)).toHaveAttribute('data-sha1', sha1(OLD));
  await expect(versions.nth(1).getByTestId('version-actor')).toHaveText('by web');
  await expect(versions.nth(1).getByTestId('version-size')).toHaveText('16 B');
  await screenshot(page, 'versions');

  // The old version previews in the app's viewer, from its own bytes.
  await versions.nth(1).getByTestId('version-preview').click();
  await expect(page.getByTestId('preview-text')).toHaveText(OLD.trim());
  await page.getByTestId('preview-close').click();
  await expect(page.getByTestId('preview-text')).toBeHidden();

  // Restore the old one: confirmed first; the new one stays as a version.
  await versions.nth(1).getByTestId('version-restore').click();
  await page.locator('.n-dialog').getByRole('button', { name: 'Restore' }).click();
  await expect(versions.nth(0)).toHaveAttribute('data-sha1', sha1(OLD));
  await expect(versions).toHaveCount(2);
  await expect(versions.nth(1)).toHaveAttribute('data-sha1', sha1(NEW));
  await expect(panel.getByTestId('details-sha1')).toHaveText(sha1(OLD));
  const content = await page.request.get(`/api/files/${first.id}/content`);
  expect(await content.text()).toBe(OLD);
  const listed = (await (await page.request.get(`/api/files/${first.id}/versions`)).json()).items as {
    sha1: string;
    current: boolean;
  }[];
  expect(listed.map((v) => [v.current, v.sha1])).toEqual([
    [true, sha1(OLD)],
    [false, sha1(NEW)],
  ]);
  // The version's download is its own bytes.
  const download = page.waitForEvent('download');
  await versions.nth(1).getByTestId('version-download').click();
  const saved = await download;
  expect(saved.suggestedFilename()).toBe('draft.txt');
  await panel.getByRole('button', { name: 'close' }).click();

  // "Keep both" adds the upload beside it under a numbered name.
  await pick(page, 'draft.txt', 'a third text');
  await dialog.getByTestId('conflict-keep').click();
  await expect(fileRow(page, 'draft (1).txt')).toBeVisible();
  expect((await findByName(page.request, null, 'draft.txt'))?.sha1).toBe(sha1(OLD));
});

test('the versions list in dark mode on a phone', async ({ browser, baseURL }) => {
  const context = await browser.newContext({
    baseURL,
    colorScheme: 'dark',
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
  });
  const page = await context.newPage();
  await signUpViaApi(page.request, uniqueName('vic'));
  const up = (text: string, onConflict?: string) =>
    page.request.post('/api/files', {
      multipart: {
        ...(onConflict ? { onConflict } : {}),
        file: { name: 'list.md', mimeType: 'text/markdown', buffer: Buffer.from(text) },
      },
    });
  expect((await up('one')).status()).toBe(201);
  expect((await up('two', 'replace')).status()).toBe(201);
  await page.goto('/files');
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  const panel = await openDetails(page, 'list.md');
  const versions = panel.getByTestId('version');
  await expect(versions).toHaveCount(2);
  // The panel fits the screen, and every action of a version is on it — once the drawer has slid
  // in (measured mid-slide, it still sticks out on the right).
  const rightEdge = async (locator: typeof panel) => {
    const b = (await locator.boundingBox())!;
    return { left: b.x, right: b.x + b.width };
  };
  await expect.poll(async () => (await rightEdge(panel)).right).toBeLessThanOrEqual(390 + 1);
  expect((await rightEdge(panel)).left).toBeGreaterThanOrEqual(0);
  for (const id of ['version-download', 'version-preview', 'version-restore', 'version-delete']) {
    await expect
      .poll(async () => (await rightEdge(versions.nth(1).getByTestId(id))).right)
      .toBeLessThanOrEqual(390 + 1);
  }
  // Dark: the version's text is light on the panel's dark background.
  const color = await versions
    .nth(1)
    .getByTestId('version-time')
    .evaluate((el) => (getComputedStyle(el).color.match(/\d+/g) ?? []).slice(0, 3).map(Number));
  expect(color.reduce((a, b) => a + b, 0) / 3).toBeGreaterThan(150);
  await screenshot(page, 'versions-phone-dark');
  await context.close();
});
