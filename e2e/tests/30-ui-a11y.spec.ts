import { writeFileSync } from 'node:fs';
import AxeBuilder from '@axe-core/playwright';
import type { Browser, Page } from '@playwright/test';
import { expect, PASSWORD, signUpViaApi, test, uniqueName } from './helpers.ts';

/**
 * axe-core over every page of the app, on a phone too, with the dialogs open where a page has
 * them: every rule in the light theme, the colour rules again in the dark one. A serious or critical violation fails the test; the lesser ones are
 * printed so they stay visible.
 */
const WCAG = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'];

interface Finding {
  where: string;
  id: string;
  impact: string;
  help: string;
  targets: string[];
  /** axe's own words on the first node: for contrast, the colours and the ratio. */
  summary: string;
}

/**
 * What only a theme changes: colours. The dark pass checks those on every page; the structure
 * (names, roles, labels, landmarks) is the same in both themes and is checked once, in light.
 */
const THEME_RULES = ['color-contrast', 'link-in-text-block'];

/**
 * `scope`: what a state adds to a page already audited (a dialog, a menu, a drawer) is audited
 * alone; the page under it was checked as it was, and a whole-page run costs 1–2 s.
 */
async function audit(
  page: Page,
  where: string,
  scheme: 'light' | 'dark',
  scope?: string,
): Promise<Finding[]> {
  // Naive UI fades dialogs and the theme in: a half-transparent frame would skew the contrast.
  // Wait until no animation or transition is running rather than for a fixed time.
  await page.waitForFunction(() => document.getAnimations().every((a) => a.playState !== 'running'));
  // Only the violations are read: axe then keeps one example of what passed, not every node.
  const axe = new AxeBuilder({ page }).options({ resultTypes: ['violations'] });
  if (scope) axe.include(scope);
  const result = await (scheme === 'light' ? axe.withTags(WCAG) : axe.withRules(THEME_RULES)).analyze();
  return result.violations.map((v) => ({
    where,
    id: v.id,
    impact: v.impact ?? 'unknown',
    help: v.help,
    targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
    summary: v.nodes[0]?.failureSummary ?? '',
  }));
}

/**
 * Moderate or minor in axe's words, but how a screen reader finds its way: every page has a
 * banner and a main landmark with everything inside one, an h1 that says where the reader is and
 * headings under it one level at a time, and every table column a header to announce with its cells.
 */
const STRUCTURE = new Set([
  'region',
  'landmark-one-main',
  'page-has-heading-one',
  'heading-order',
  'empty-table-header',
]);

function report(findings: Finding[]): void {
  // Every finding, with axe's explanation, beside the test's other output.
  writeFileSync(test.info().outputPath('axe-violations.json'), JSON.stringify(findings, null, 2));
  const minor = findings.filter((f) => f.impact !== 'serious' && f.impact !== 'critical');
  for (const f of minor)
    console.log(`[a11y ${f.impact}] ${f.where}: ${f.id} — ${f.help} (${f.targets.join(', ')})`);
  const blocking = findings.filter(
    (f) => f.impact === 'serious' || f.impact === 'critical' || STRUCTURE.has(f.id),
  );
  expect(
    blocking.map((f) => `${f.where}: ${f.impact} ${f.id} — ${f.help}\n    ${f.targets.join('\n    ')}`),
  ).toEqual([]);
}

async function context(
  browser: Browser,
  baseURL: string | undefined,
  scheme: 'light' | 'dark',
  phone = false,
) {
  return browser.newContext({
    baseURL,
    colorScheme: scheme,
    ...(phone ? { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true } : {}),
  });
}

/** A user with a folder, files of several kinds, a share link, a trashed file and an app password. */
async function seed(page: Page): Promise<{ shareUrl: string; lockedUrl: string }> {
  await signUpViaApi(page.request, uniqueName('ally'));
  const folder = await page.request.post('/api/folders', { data: { name: 'Holiday photos' } });
  expect(folder.status()).toBe(201);
  const ids: Record<string, string> = {};
  for (const name of ['notes.txt', 'report.pdf', 'old.txt']) {
    const res = await page.request.post('/api/files', {
      multipart: { file: { name, mimeType: 'application/octet-stream', buffer: Buffer.from(`${name}\n`) } },
    });
    expect(res.status()).toBe(201);
    ids[name] = ((await res.json()) as { file: { id: string } }).file.id;
  }
  expect((await page.request.delete(`/api/files/${ids['old.txt']}`)).status()).toBeLessThan(300);
  const share = await page.request.post(`/api/files/${ids['notes.txt']}/shares`, { data: {} });
  const locked = await page.request.post(`/api/files/${ids['notes.txt']}/shares`, {
    data: { password: 'open-sesame-1' },
  });
  expect((await page.request.post('/api/auth/app-passwords', { data: { name: 'backup' } })).status()).toBe(
    201,
  );
  return {
    shareUrl: ((await share.json()) as { share: { url: string } }).share.url,
    lockedUrl: ((await locked.json()) as { share: { url: string } }).share.url,
  };
}

for (const scheme of ['light', 'dark'] as const) {
  test(`every page passes axe-core without serious violations (${scheme})`, async ({ browser, baseURL }) => {
    test.setTimeout(300_000);
    const findings: Finding[] = [];
    const auditIn = (page: Page, where: string, scope?: string) => audit(page, where, scheme, scope);

    // Signed out: sign-in and sign-up, with their validation messages showing.
    const guest = await context(browser, baseURL, scheme);
    const g = await guest.newPage();
    await g.goto('/signin');
    await expect(g.getByTestId('auth-submit')).toBeVisible();
    findings.push(...(await auditIn(g, 'sign-in')));
    await g.getByTestId('auth-submit').click();
    await expect(g.locator('.n-form-item-feedback__line').first()).toBeVisible();
    findings.push(...(await auditIn(g, 'sign-in, invalid', 'form')));
    await g.goto('/signup');
    await expect(g.locator('input[name=confirm]')).toBeVisible();
    findings.push(...(await auditIn(g, 'sign-up')));

    const ctx = await context(browser, baseURL, scheme);
    const page = await ctx.newPage();
    const { shareUrl, lockedUrl } = await seed(page);

    await page.goto('/files');
    await expect(page.locator('[data-testid=file-row][data-name="notes.txt"]')).toBeVisible();
    findings.push(...(await auditIn(page, 'files (list)')));
    await page.locator('[data-testid=file-row][data-name="notes.txt"]').click();
    await expect(page.getByTestId('selection-bar')).toBeVisible();
    findings.push(...(await auditIn(page, 'files (a row selected)', '[data-testid=selection-bar]')));
    await page.locator('[data-testid=file-row][data-name="notes.txt"]').getByTestId('row-menu').click();
    await expect(page.locator('.n-dropdown-option').first()).toBeVisible();
    findings.push(...(await auditIn(page, 'files (row menu)', '.n-dropdown-menu')));
    await page.keyboard.press('Escape');
    await page.mouse.click(5, 5);

    await page.getByTestId('new-folder').click();
    await expect(page.getByRole('dialog')).toBeVisible();
    findings.push(...(await auditIn(page, 'new folder dialog', '[role=dialog]')));
    await page.keyboard.press('Escape');
    await expect(page.getByRole('dialog')).toHaveCount(0);

    const notes = page.locator('[data-testid=file-row][data-name="notes.txt"]');
    await notes.click();
    await page.getByTestId('bulk-share').click();
    await expect(page.getByTestId('share-dialog')).toBeVisible();
    await expect(page.getByTestId('share-list')).toBeVisible();
    findings.push(...(await auditIn(page, 'share dialog', '[data-testid=share-dialog]')));
    await page.getByTestId('share-create').click();
    await expect(page.getByTestId('share-qr')).toBeVisible();
    findings.push(...(await auditIn(page, 'share dialog, link made', '[data-testid=share-dialog]')));
    await page.keyboard.press('Escape');
    await expect(page.getByTestId('share-dialog')).toHaveCount(0);

    await notes.click();
    await page.getByTestId('bulk-move').click();
    await expect(page.getByRole('dialog')).toBeVisible();
    findings.push(...(await auditIn(page, 'move dialog', '[role=dialog]')));
    await page.keyboard.press('Escape');
    await expect(page.getByRole('dialog')).toHaveCount(0);

    await notes.click();
    await page.keyboard.press('i');
    await expect(page.getByTestId('details')).toBeVisible();
    findings.push(...(await auditIn(page, 'details drawer', '[data-testid=details]')));
    await page.keyboard.press('Escape');
    await expect(page.getByTestId('details')).toHaveCount(0);

    await page.getByTestId('activity-open').click();
    await expect(page.getByTestId('event').first()).toBeVisible();
    findings.push(...(await auditIn(page, 'activity panel', '[data-testid=activity]')));
    await page.keyboard.press('Escape');
    await expect(page.getByTestId('activity')).toHaveCount(0);

    await notes.dblclick();
    await expect(page.getByTestId('preview-text')).toBeVisible();
    findings.push(...(await auditIn(page, 'preview', '[data-testid=preview]')));
    await page.keyboard.press('Escape');
    await expect(page.getByTestId('preview')).toHaveCount(0);

    await page.getByTestId('view-grid').click();
    await expect(page.getByTestId('file-grid')).toBeVisible();
    findings.push(...(await auditIn(page, 'files (grid)')));
    await page.getByTestId('view-list').click();

    await page.getByTestId('search').locator('input').fill('notes');
    await expect(page).toHaveURL(/q=notes/);
    await expect(page.locator('[data-testid=file-row]')).toHaveCount(1);
    findings.push(...(await auditIn(page, 'search results')));

    await page.goto('/files');
    await page.locator('[data-testid=file-row][data-name="Holiday photos"]').dblclick();
    await expect(page.getByTestId('crumb-Holiday photos')).toBeVisible();
    findings.push(...(await auditIn(page, 'empty folder')));

    await page.getByTestId('user-menu').click();
    await expect(page.getByTestId('usage')).toBeVisible();
    findings.push(...(await auditIn(page, 'user menu', '.n-dropdown-menu')));
    await page.keyboard.press('Escape');

    for (const [path, where] of [
      ['/trash', 'trash'],
      ['/links', 'links'],
      ['/settings/app-passwords', 'app passwords'],
      ['/settings/sessions', 'signed-in devices'],
      ['/settings/two-factor', 'two-factor sign-in'],
      ['/shared', 'shared with me'],
    ] as const) {
      await page.goto(path);
      await expect(page.locator('h1').first()).toBeVisible();
      await page.waitForLoadState('networkidle');
      findings.push(...(await auditIn(page, where)));
    }

    // The public share pages, as a visitor sees them.
    const visitor = await context(browser, baseURL, scheme);
    const v = await visitor.newPage();
    await v.goto(new URL(shareUrl).pathname);
    await expect(v.getByTestId('public-preview')).toBeVisible();
    findings.push(...(await auditIn(v, 'public share')));
    await v.goto(new URL(lockedUrl).pathname);
    await expect(v.locator('input[type=password]')).toBeVisible();
    findings.push(...(await auditIn(v, 'public share, password')));
    await v.goto('/s/no-such-link-at-all');
    await expect(v.getByTestId('share-gone')).toBeVisible();
    findings.push(...(await auditIn(v, 'public share, dead link')));

    // The admin's pages.
    const adminCtx = await context(browser, baseURL, scheme);
    const a = await adminCtx.newPage();
    const admin = JSON.parse(process.env.DFS_E2E_ADMIN ?? '{}') as { username: string; password: string };
    expect((await a.request.post('/api/auth/signin', { data: admin })).status()).toBe(200);
    await a.goto('/admin/users');
    await expect(a.getByTestId('users-table')).toBeVisible();
    await a.waitForLoadState('networkidle');
    findings.push(...(await auditIn(a, 'users')));
    await a.getByTestId(`quota-${admin.username}`).click();
    await a.getByTestId('quota-custom').click();
    await expect(a.getByTestId('quota-gib')).toBeVisible();
    findings.push(...(await auditIn(a, 'quota dialog', '[role=dialog]')));
    await a.keyboard.press('Escape');
    await a.goto('/admin/groups');
    await expect(a.locator('h1')).toBeVisible();
    await a.waitForLoadState('networkidle');
    findings.push(...(await auditIn(a, 'groups')));
    await a.goto('/admin/nodes');
    await expect(a.getByTestId('node-status').first()).toBeVisible();
    findings.push(...(await auditIn(a, 'nodes')));
    await a.goto('/admin/dashboard');
    await expect(a.getByTestId('dashboard')).toBeVisible();
    await a.waitForLoadState('networkidle');
    findings.push(...(await auditIn(a, 'dashboard')));
    await a.goto('/admin/audit');
    await expect(a.getByTestId('audit-table')).toBeVisible();
    await a.waitForLoadState('networkidle');
    findings.push(...(await auditIn(a, 'audit log')));

    // A phone: the compact header and the icon buttons.
    const phone = await context(browser, baseURL, scheme, true);
    const p = await phone.newPage();
    expect((await p.request.post('/api/auth/signin', { data: admin })).status()).toBe(200);
    await p.goto('/files');
    await expect(p.getByTestId('file-table')).toBeVisible();
    await p.waitForLoadState('networkidle');
    findings.push(...(await auditIn(p, 'files (phone)')));

    for (const c of [guest, ctx, visitor, adminCtx, phone]) await c.close();
    report(findings);
  });
}

test('sign-in and sign-up fields are found by their labels', async ({ page }) => {
  await page.goto('/signup');
  await page.getByLabel('Username').fill(uniqueName('lab'));
  await page.getByLabel(/^Password/).fill(PASSWORD);
  await page.getByLabel('Repeat password').fill(PASSWORD);
  await page.getByTestId('auth-submit').click();
  await expect(page).toHaveURL(/\/files/);
});
