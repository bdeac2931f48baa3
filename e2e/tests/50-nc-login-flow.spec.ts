import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, PASSWORD, test, uniqueName } from './helpers.ts';

const NEXTCLOUDCMD = 'Mozilla/5.0 (Linux) mirall/3.7.3git (nextcloudcmd, debian ClientArchitecture: x86_64)';

interface Flow {
  poll: { token: string; endpoint: string };
  login: string;
}

/** What a Nextcloud app does: start a flow, then poll (a form, as the desktop client sends it). */
async function startFlow(baseURL: string): Promise<Flow> {
  const res = await fetch(`${baseURL}/index.php/login/v2`, {
    method: 'POST',
    headers: { 'user-agent': NEXTCLOUDCMD },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Flow;
}
const poll = (flow: Flow) =>
  fetch(flow.poll.endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: flow.poll.token }).toString(),
  });

test('a Nextcloud app signs in through the browser: sign in, allow, and the poll gets a working app password', async ({
  page,
  playwright,
  baseURL,
}) => {
  const username = uniqueName('ncf');
  const other = await playwright.request.newContext({ baseURL });
  expect((await other.post('/api/auth/signup', { data: { username, password: PASSWORD } })).status()).toBe(
    201,
  );
  await other.dispose();

  const flow = await startFlow(baseURL!);
  expect(flow.poll.endpoint).toBe(`${baseURL}/index.php/login/v2/poll`);
  expect((await poll(flow)).status).toBe(404);

  // Not signed in: the login URL lands on dfs's own sign-in, then on the question.
  await page.goto(flow.login);
  await expect(page).toHaveURL(/\/signin\?next=/);
  await page.locator('#auth-username').fill(username);
  await page.locator('#auth-password').fill(PASSWORD);
  await page.getByTestId('auth-submit').click();
  await expect(page).toHaveURL(/\/connect\//);
  await expect(page.getByText('Allow nextcloudcmd to access your files?')).toBeVisible();
  expect((await poll(flow)).status).toBe(404);

  await page.getByTestId('connect-allow').click();
  await expect(page.getByTestId('connect-allowed')).toContainText('You can close this window.');

  const got = await poll(flow);
  expect(got.status).toBe(200);
  const creds = (await got.json()) as { server: string; loginName: string; appPassword: string };
  expect(creds).toMatchObject({ server: baseURL, loginName: username });
  // Once only.
  expect((await poll(flow)).status).toBe(404);

  const basic = `Basic ${Buffer.from(`${creds.loginName}:${creds.appPassword}`).toString('base64')}`;
  const user = await fetch(`${baseURL}/ocs/v2.php/cloud/user?format=json`, {
    headers: { authorization: basic, 'ocs-apirequest': 'true' },
  });
  expect(user.status).toBe(200);
  expect(((await user.json()) as { ocs: { data: { id: string } } }).ocs.data.id).toBe(username);

  // The desktop client's sync engine signs in with it and brings a file down.
  const put = await fetch(`${baseURL}/remote.php/dav/files/${username}/hello.txt`, {
    method: 'PUT',
    headers: { authorization: basic },
    body: 'synced with the password the flow gave\n',
  });
  expect(put.status).toBe(201);
  const home = await mkdtemp(path.join(os.tmpdir(), 'dfs-e2e-ncflow-'));
  try {
    await mkdir(path.join(home, 'sync'));
    const run = spawnSync(
      'nextcloudcmd',
      [
        '--non-interactive',
        '--max-sync-retries',
        '1',
        '-u',
        creds.loginName,
        '-p',
        creds.appPassword,
        path.join(home, 'sync'),
        creds.server,
      ],
      { env: { ...process.env, HOME: home }, encoding: 'utf8', timeout: 120_000 },
    );
    expect(run.status, run.stderr.slice(-2000)).toBe(0);
    expect(await readFile(path.join(home, 'sync', 'hello.txt'), 'utf8')).toBe(
      'synced with the password the flow gave\n',
    );
  } finally {
    await rm(home, { recursive: true, force: true });
  }

  // The app password is listed under the app's name.
  await page.goto('/settings/app-passwords');
  await expect(page.locator('[data-testid=app-password-row][data-name="nextcloudcmd"]')).toBeVisible();

  // A denied flow returns nothing, and its page cannot be answered again.
  const denied = await startFlow(baseURL!);
  await page.goto(denied.login);
  await expect(page.getByText('Allow nextcloudcmd to access your files?')).toBeVisible();
  await page.getByTestId('connect-deny').click();
  await expect(page.getByTestId('connect-denied')).toBeVisible();
  expect((await poll(denied)).status).toBe(404);
  await page.goto(denied.login);
  await expect(page.getByTestId('connect-gone')).toBeVisible();
  expect((await poll(denied)).status).toBe(404);
});

test("a mobile app's webview signs in with Login Flow v1: the credentials come back in an nc:// URL", async ({
  browser,
  baseURL,
}) => {
  const username = uniqueName('ncv1');
  // The app's webview: its own User-Agent, the header the apps send, no cookies of the user's.
  const context = await browser.newContext({
    baseURL,
    userAgent: 'Mozilla/5.0 (Linux; Android 14) Nextcloud-android/3.29.0',
    extraHTTPHeaders: { 'OCS-APIREQUEST': 'true' },
  });
  const page = await context.newPage();
  expect(
    (await page.request.post('/api/auth/signup', { data: { username, password: PASSWORD } })).status(),
  ).toBe(201);
  await context.clearCookies();

  await page.goto('/index.php/login/flow');
  await expect(page).toHaveURL(/\/signin\?next=/);
  await page.locator('#auth-username').fill(username);
  await page.locator('#auth-password').fill(PASSWORD);
  await page.getByTestId('auth-submit').click();
  await expect(page.getByText('Allow Nextcloud Android to access your files?')).toBeVisible();

  const handedOver = page.waitForResponse((r) => r.url().includes('/index.php/login/flow/grant'));
  await page.getByTestId('connect-allow').click();
  const grant = await handedOver;
  expect(grant.status()).toBe(303);
  const location = grant.headers().location ?? '';
  const m = /^nc:\/\/login\/server:(.+)&user:(.+)&password:(.+)$/.exec(location);
  expect(m?.[1]).toBe(baseURL);
  expect(decodeURIComponent(m![2]!)).toBe(username);
  const basic = `Basic ${Buffer.from(`${username}:${decodeURIComponent(m![3]!)}`).toString('base64')}`;
  const user = await fetch(`${baseURL}/ocs/v1.php/cloud/user?format=json`, {
    headers: { authorization: basic },
  });
  expect(user.status).toBe(200);
  await context.close();
});
