import { createHash, randomBytes } from 'node:crypto';
import AxeBuilder from '@axe-core/playwright';
import type { FileEntry } from '@dfs/shared';
import type { APIRequestContext, Page } from '@playwright/test';
import { expect, fileRow, listFolder, screenshot, signUpViaApi, test, uniqueName } from './helpers.ts';

const sha1 = (b: Buffer | string) => createHash('sha1').update(b).digest('hex');

async function folder(request: APIRequestContext, name: string, parentId?: string): Promise<FileEntry> {
  const res = await request.post('/api/folders', { data: { name, ...(parentId ? { parentId } : {}) } });
  expect(res.status(), await res.text()).toBe(201);
  return ((await res.json()) as { file: FileEntry }).file;
}

async function upload(
  request: APIRequestContext,
  name: string,
  text: string,
  parentId: string,
): Promise<FileEntry> {
  const res = await request.post('/api/files', {
    multipart: { parentId, file: { name, mimeType: 'text/plain', buffer: Buffer.from(text) } },
  });
  expect(res.status(), await res.text()).toBe(201);
  return ((await res.json()) as { file: FileEntry }).file;
}

async function patch(request: APIRequestContext, id: string, data: object): Promise<void> {
  const res = await request.patch(`/api/files/${id}`, { data });
  expect(res.status(), await res.text()).toBe(200);
}

/** Every live entry below a folder, all levels down, as `path → sha1` (folders: `path/`). */
async function tree(
  request: APIRequestContext,
  parentId: string,
  prefix = '',
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of await listFolder(request, parentId)) {
    if (f.kind === 'folder') {
      out[`${prefix}${f.name}/`] = '';
      Object.assign(out, await tree(request, f.id, `${prefix}${f.name}/`));
    } else {
      out[`${prefix}${f.name}`] = f.sha1 ?? '';
    }
  }
  return out;
}

/** axe-core over this spec's notices only (30-ui-a11y covers the rest of the app): nothing serious. */
async function audit(page: Page, selector = '[data-testid=alerts]'): Promise<void> {
  // Naive fades its alerts in: a half-transparent frame would skew the contrast.
  await page.waitForTimeout(400);
  const result = await new AxeBuilder({ page })
    .include(selector)
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'])
    .analyze();
  const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(
    serious.map((v) => `${v.id}: ${v.help} ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
  ).toEqual([]);
}

async function confirmRestore(page: Page) {
  const dialog = page.locator('.n-dialog');
  await expect(dialog).toContainText('Nothing is deleted');
  await expect(dialog).toContainText('go to the trash');
  await dialog.getByRole('button', { name: 'Restore', exact: true }).click();
}

test('the activity list of a folder, and restoring the folder to before a change', async ({ page }) => {
  await signUpViaApi(page.request, uniqueName('hist'));
  const projects = await folder(page.request, 'Projects');
  const old = await folder(page.request, 'Old', projects.id);
  const plan = await upload(page.request, 'plan.txt', 'the plan\n', projects.id);
  const memo = await upload(page.request, 'memo.txt', 'a memo\n', projects.id);
  // The changes the list must show, each with its places.
  await patch(page.request, plan.id, { name: 'plan v2.txt' });
  await patch(page.request, plan.id, { parentId: old.id });
  expect((await page.request.delete(`/api/files/${memo.id}`)).status()).toBeLessThan(300);
  await upload(page.request, 'later.txt', 'made after\n', projects.id);

  await page.goto(`/files/${projects.id}`);
  await page.getByTestId('activity-open').click();
  const panel = page.getByTestId('activity');
  await expect(panel).toContainText('Activity in “Projects”');
  const events = panel.getByTestId('event');
  await expect(events.first()).toHaveAttribute('data-action', 'created');
  await expect(events.nth(0).getByTestId('event-to')).toHaveText('/Projects/later.txt');
  await expect(events.nth(1)).toHaveAttribute('data-action', 'trashed');
  await expect(events.nth(1).getByTestId('event-to')).toHaveText('/Projects/memo.txt');
  await expect(events.nth(2)).toHaveAttribute('data-action', 'moved');
  await expect(events.nth(2).getByTestId('event-from')).toHaveText('/Projects/plan v2.txt');
  await expect(events.nth(2).getByTestId('event-to')).toHaveText('/Projects/Old/plan v2.txt');
  const renamed = events.nth(3);
  await expect(renamed).toHaveAttribute('data-action', 'renamed');
  await expect(renamed.getByTestId('event-action')).toHaveText('Renamed');
  await expect(renamed.getByTestId('event-from')).toHaveText('/Projects/plan.txt');
  await expect(renamed.getByTestId('event-to')).toHaveText('/Projects/plan v2.txt');
  await expect(renamed.getByTestId('event-actor')).toHaveText('by web');
  await screenshot(page, 'activity');

  // Back to just before the rename: the name and place return, the trashed memo comes back,
  // the file made since goes to the trash.
  await renamed.getByTestId('event-restore').click();
  await confirmRestore(page);
  const status = page.getByTestId('restore-status');
  await expect(status).toHaveAttribute('data-state', 'done', { timeout: 30_000 });
  await expect(status).toContainText('“Projects” is back as it was');
  await expect(status.getByTestId('restore-trashed')).toHaveAttribute('data-n', '1');
  expect(Number(await status.getByTestId('restore-restored').getAttribute('data-n'))).toBeGreaterThanOrEqual(
    2,
  );
  expect(await tree(page.request, projects.id)).toEqual({
    'Old/': '',
    'plan.txt': sha1('the plan\n'),
    'memo.txt': sha1('a memo\n'),
  });
  const trash = ((await (await page.request.get('/api/trash')).json()) as { items: FileEntry[] }).items;
  expect(trash.map((f) => f.name)).toContain('later.txt');
  // The panel made way for the progress, and the listing on screen follows without a reload.
  await expect(panel).toBeHidden();
  await expect(fileRow(page, 'plan.txt')).toBeVisible();
  await expect(fileRow(page, 'memo.txt')).toBeVisible();
  await expect(fileRow(page, 'later.txt')).toHaveCount(0);

  // The folder's own change is listed, but offers no restore: that puts back what is in it, never
  // the folder's own name.
  await patch(page.request, projects.id, { name: 'Projects (old)' });
  await page.reload();
  await expect(page.getByTestId('crumb-Projects (old)')).toBeVisible();
  await page.getByTestId('activity-open').click();
  const own = panel.getByTestId('event').first();
  await expect(own).toHaveAttribute('data-action', 'renamed');
  await expect(own.getByTestId('event-from')).toHaveText('/Projects');
  await expect(own.getByTestId('event-to')).toHaveText('/Projects (old)');
  await expect(own.getByTestId('event-restore')).toHaveCount(0);
  await expect(panel.getByTestId('event').nth(1).getByTestId('event-restore')).toBeVisible();
});

test('many files changed by one app password raise an alert; its undo brings every file back', async ({
  page,
  browser,
  baseURL,
}) => {
  test.setTimeout(180_000);
  const username = uniqueName('ransom');
  await signUpViaApi(page.request, username);
  const work = await folder(page.request, 'Work');
  const sub = await folder(page.request, 'Reports', work.id);
  // 120 files in two levels: more than the guard's 100 can change in one burst.
  const originals: { name: string; parent: string; text: string }[] = [];
  for (let i = 0; i < 120; i++) {
    const inSub = i % 3 === 0;
    originals.push({
      name: `doc-${String(i).padStart(3, '0')}.txt`,
      parent: inSub ? 'Reports/' : '',
      text: `document ${i}\n`,
    });
  }
  for (let i = 0; i < originals.length; i += 8) {
    await Promise.all(
      originals.slice(i, i + 8).map((o) => upload(page.request, o.name, o.text, o.parent ? sub.id : work.id)),
    );
  }
  const before = await tree(page.request, work.id);
  expect(Object.keys(before)).toHaveLength(121);

  const made = await page.request.post('/api/auth/app-passwords', { data: { name: 'sync gone wrong' } });
  expect(made.status()).toBe(201);
  const { secret } = (await made.json()) as { secret: string };
  const auth = `Basic ${Buffer.from(`${username}:${secret}`).toString('base64')}`;
  const dav = (
    method: string,
    path: string,
    init: { body?: Uint8Array<ArrayBuffer>; destination?: string } = {},
  ) =>
    fetch(`${baseURL}/dav/Work/${path}`, {
      method,
      headers: {
        authorization: auth,
        ...(init.destination
          ? { destination: `${baseURL}/dav/Work/${init.destination}`, overwrite: 'F' }
          : {}),
      },
      ...(init.body ? { body: init.body } : {}),
    });
  // The drill: 70 files overwritten with random bytes, 30 renamed to *.locked, 10 trashed.
  const jobs = originals.map((o, i) => async () => {
    const path = `${o.parent}${o.name}`;
    let res: Response;
    if (i < 70) res = await dav('PUT', path, { body: new Uint8Array(randomBytes(64)) });
    else if (i < 100) res = await dav('MOVE', path, { destination: `${path}.locked` });
    else if (i < 110) res = await dav('DELETE', path);
    else return;
    expect(res.status, `${res.status} for ${path}`).toBeLessThan(300);
  });
  for (let i = 0; i < jobs.length; i += 8) await Promise.all(jobs.slice(i, i + 8).map((j) => j()));
  expect(await tree(page.request, work.id)).not.toEqual(before);

  await page.goto('/files');
  const alert = page.getByTestId('alert');
  await expect(alert).toHaveCount(1);
  await expect(alert.getByTestId('alert-text')).toContainText('sync gone wrong');
  await expect(alert.getByTestId('alert-text')).toContainText('/Work');
  await expect(alert.getByTestId('alert-revoke')).toHaveText('Revoke “sync gone wrong”');
  await screenshot(page, 'mass-change-alert');
  await audit(page);
  // The same alert on a phone in dark mode: every button on the screen, the text light.
  const phone = await browser.newContext({
    baseURL,
    storageState: await page.context().storageState(),
    colorScheme: 'dark',
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
  });
  const p = await phone.newPage();
  await p.goto('/files');
  const small = p.getByTestId('alert');
  await expect(small).toBeVisible();
  for (const id of ['alert-undo', 'alert-revoke', 'alert-dismiss']) {
    const b = (await small.getByTestId(id).boundingBox())!;
    expect(b.x).toBeGreaterThanOrEqual(0);
    expect(b.x + b.width).toBeLessThanOrEqual(390 + 1);
  }
  const rgb = await small
    .getByTestId('alert-text')
    .evaluate((el) => (getComputedStyle(el).color.match(/\d+/g) ?? []).slice(0, 3).map(Number));
  expect(rgb.reduce((a, b) => a + b, 0) / 3).toBeGreaterThan(150);
  await screenshot(p, 'mass-change-alert-phone-dark');
  await audit(p);
  await phone.close();

  await alert.getByTestId('alert-undo').click();
  await expect(page.locator('.n-dialog')).toContainText('Undo the changes of sync gone wrong');
  await confirmRestore(page);
  const status = page.getByTestId('restore-status');
  await expect(status).toHaveAttribute('data-state', 'done', { timeout: 60_000 });
  await expect(status.getByTestId('restore-counts')).toBeVisible();
  expect(Number(await status.getByTestId('restore-restored').getAttribute('data-n'))).toBeGreaterThanOrEqual(
    110,
  );
  await screenshot(page, 'mass-change-undone');
  await audit(page, '[data-testid=restore-status]');
  // Every file is back at its old path with its old bytes.
  expect(await tree(page.request, work.id)).toEqual(before);
  const doc0 = (await listFolder(page.request, sub.id)).find((f) => f.name === 'doc-000.txt')!;
  expect(sha1(await (await page.request.get(`/api/files/${doc0.id}/content`)).body())).toBe(
    sha1('document 0\n'),
  );
  // The random bytes stay a version of the file, not lost.
  const versions = (await (await page.request.get(`/api/files/${doc0.id}/versions`)).json()) as {
    items: { current: boolean }[];
  };
  expect(versions.items.filter((v) => !v.current).length).toBeGreaterThanOrEqual(1);

  // The app password that did it is revoked from the alert, after a confirmation.
  await alert.getByTestId('alert-revoke').click();
  await page.locator('.n-dialog').getByRole('button', { name: 'Revoke' }).click();
  await expect(alert.getByTestId('alert-revoke')).toHaveCount(0);
  expect((await dav('PUT', 'doc-001.txt', { body: new TextEncoder().encode('again') })).status).toBe(401);

  await alert.getByTestId('alert-dismiss').click();
  await expect(page.getByTestId('alert')).toHaveCount(0);
  const left = (await (await page.request.get('/api/alerts')).json()) as { items: unknown[] };
  expect(left.items).toHaveLength(0);
});

test('the activity panel on a phone in dark mode', async ({ browser, baseURL }) => {
  const context = await browser.newContext({
    baseURL,
    colorScheme: 'dark',
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
  });
  const page = await context.newPage();
  await signUpViaApi(page.request, uniqueName('histp'));
  const docs = await folder(page.request, 'Docs');
  const f = await upload(page.request, 'a long file name that wraps on a phone.txt', 'x', docs.id);
  await patch(page.request, f.id, { name: 'renamed.txt' });
  await page.goto('/files');
  await page.getByTestId('activity-open').click();
  const panel = page.getByTestId('activity');
  await expect(panel).toContainText('Activity in all your files');
  await expect(panel.getByTestId('event')).toHaveCount(3);
  const edge = async (l: ReturnType<Page['getByTestId']>) => {
    const b = (await l.boundingBox())!;
    return { left: b.x, right: b.x + b.width };
  };
  await expect.poll(async () => (await edge(panel)).right).toBeLessThanOrEqual(390 + 1);
  expect((await edge(panel)).left).toBeGreaterThanOrEqual(0);
  for (const id of ['event-path', 'event-restore']) {
    expect((await edge(panel.getByTestId(id).first())).right).toBeLessThanOrEqual(390 + 1);
  }
  const color = await panel
    .getByTestId('event-path')
    .first()
    .evaluate((el) => (getComputedStyle(el).color.match(/\d+/g) ?? []).slice(0, 3).map(Number));
  expect(color.reduce((a, b) => a + b, 0) / 3).toBeGreaterThan(150);
  await screenshot(page, 'activity-phone-dark');
  await context.close();
});
