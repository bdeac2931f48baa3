import { freePort } from '@dfs/cluster/ports';
import { type Browser, expect, type Page, test } from '@playwright/test';
import { startTestProvider, type TestProvider } from '../../packages/server/test/support/oidc-provider.ts';
import { type DfsServer, startDfsServer } from '../dfs-server.ts';

/**
 * Single sign-on through Chromium against a real OpenID provider (panva's oidc-provider, started
 * here), with a dfs server of its own (the bundle global-setup built) configured for it, so the
 * other specs' server keeps its plain sign-in page.
 */
const ADMIN = { username: 'admin', password: 'admin-password-1' };

let idp: TestProvider;
let server: DfsServer | undefined;
let base: string;

test.beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  idp = await startTestProvider([`${base}/api/auth/oidc/callback`]);
  // The first account administers the server; the people signing in with the provider do not.
  server = await startDfsServer({
    port,
    dataDirPrefix: 'dfs-e2e-oidc-',
    admin: ADMIN,
    env: {
      DFS_SIGNUP: 'open',
      DFS_OIDC_ISSUER: idp.issuer,
      DFS_OIDC_CLIENT_ID: idp.clientId,
      DFS_OIDC_CLIENT_SECRET: idp.clientSecret,
      DFS_OIDC_NAME: 'Test IdP',
    },
  });
});

test.afterAll(async () => {
  await server?.stop();
  await idp?.close();
});

/** A fresh browser: no dfs session, no session at the provider either. */
async function freshPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext();
  return context.newPage();
}

/** The user the page's cookie signs in as, or null. */
async function whoAmI(page: Page): Promise<{ id: string; username: string } | null> {
  const res = await page.request.get(`${base}/api/auth/me`);
  return res.ok() ? ((await res.json()) as { user: { id: string; username: string } }).user : null;
}

async function userCount(): Promise<number> {
  const signin = await fetch(`${base}/api/auth/signin`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(ADMIN),
  });
  const { token } = (await signin.json()) as { token: string };
  const res = await fetch(`${base}/api/admin/users`, { headers: { authorization: `Bearer ${token}` } });
  return ((await res.json()) as { total: number }).total;
}

/** From dfs's sign-in page through the provider's, as `login`. */
async function signInWithProvider(page: Page, login: string): Promise<void> {
  await page.goto(`${base}/signin`);
  await page.getByRole('button', { name: 'Sign in with Test IdP' }).click();
  await expect(page).toHaveURL(new RegExp(`^${idp.issuer}/interaction/`));
  await page.getByLabel('Login').fill(login);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test('the first sign-in with the provider creates the account, the next one signs into the same account', async ({
  browser,
}) => {
  idp.accounts.set('sub-olivia', { preferred_username: 'Olivia', email: 'olivia@example.org' });
  const first = await freshPage(browser);
  await signInWithProvider(first, 'sub-olivia');
  await expect(first).toHaveURL(`${base}/files`);
  await expect(first.getByTestId('user-menu')).toBeVisible();
  const olivia = await whoAmI(first);
  expect(olivia?.username).toBe('olivia');

  // Another browser, and a new name at the provider: the subject still leads to her account.
  idp.accounts.set('sub-olivia', { preferred_username: 'olivia.m' });
  const second = await freshPage(browser);
  await signInWithProvider(second, 'sub-olivia');
  await expect(second).toHaveURL(`${base}/files`);
  expect(await whoAmI(second)).toEqual(olivia);
});

test('a callback whose state was tampered with is refused on the sign-in page', async ({ browser }) => {
  idp.accounts.set('sub-peter', { preferred_username: 'peter' });
  const before = await userCount();
  const page = await freshPage(browser);
  // The state is swapped on the way to the provider, which hands it back to dfs as it got it
  // (the redirects back are not for Playwright to rewrite: only a page's first request is routed).
  await page.route(`${idp.issuer}/auth?*`, (route) => {
    const url = new URL(route.request().url());
    url.searchParams.set('state', `${url.searchParams.get('state')?.slice(0, -4)}AAAA`);
    return route.continue({ url: url.href });
  });
  await signInWithProvider(page, 'sub-peter');
  await expect(page).toHaveURL(`${base}/signin`);
  await expect(page.getByTestId('sso-error')).toContainText('Signing in with Test IdP did not work');
  expect(await whoAmI(page)).toBeNull();
  expect(await userCount()).toBe(before);
});

test('an ID token carrying another nonce than the one dfs sent is refused', async ({ browser }) => {
  idp.accounts.set('sub-quinn', { preferred_username: 'quinn' });
  const before = await userCount();
  const page = await freshPage(browser);
  // Someone swaps the nonce on the way to the provider: its ID token then carries theirs.
  await page.route(`${idp.issuer}/auth?*`, (route) => {
    const url = new URL(route.request().url());
    url.searchParams.set('nonce', 'nonce-of-another-sign-in-000000000000');
    return route.continue({ url: url.href });
  });
  await signInWithProvider(page, 'sub-quinn');
  await expect(page).toHaveURL(`${base}/signin`);
  await expect(page.getByTestId('sso-error')).toContainText('Signing in with Test IdP did not work');
  expect(await whoAmI(page)).toBeNull();
  expect(await userCount()).toBe(before);
});

test('the error reads in Chinese too', async ({ browser }) => {
  const page = await freshPage(browser);
  await page.addInitScript(() => localStorage.setItem('dfs.locale', 'zh-CN'));
  await page.goto(`${base}/signin?ssoError=signup_closed`);
  await expect(page.getByTestId('sso-error')).toContainText('此服务器上还没有你的账户');
  await expect(page.getByRole('button', { name: '使用 Test IdP 登录' })).toBeVisible();
});
