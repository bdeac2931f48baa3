import { Secret, TOTP } from 'otpauth';
import { expect, PASSWORD, signInAsAdmin, signUpViaApi, test, uniqueName } from './helpers.ts';

const FIREFOX_ON_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0';

test('a user sees their signed-in devices and signs one out; its next request is refused', async ({
  page,
  playwright,
  baseURL,
}) => {
  const username = uniqueName('sess');
  await signUpViaApi(page.request, username);
  // Another device: its own cookie jar and browser.
  const other = await playwright.request.newContext({
    baseURL,
    extraHTTPHeaders: { 'user-agent': FIREFOX_ON_WINDOWS },
  });
  expect((await other.post('/api/auth/signin', { data: { username, password: PASSWORD } })).status()).toBe(
    200,
  );
  expect((await other.get('/api/files')).status()).toBe(200);

  await page.goto('/files');
  await page.getByTestId('user-menu').click();
  await page.getByTestId('menu-sessions').click();
  await expect(page).toHaveURL(/\/settings\/sessions/);
  const rows = page.getByTestId('session-row');
  await expect(rows).toHaveCount(2);
  const mine = page.locator('[data-testid=session-row][data-current=true]');
  await expect(mine).toContainText('This device');
  await expect(mine.getByTestId('session-device')).toHaveText(/Chrome on Linux/);
  const theirs = page.locator('[data-testid=session-row][data-current=false]');
  await expect(theirs.getByTestId('session-device')).toHaveText('Firefox on Windows');
  await expect(theirs).toContainText('127.0.0.1');

  await theirs.getByTestId('session-sign-out').click();
  await page.getByRole('button', { name: 'Confirm' }).click();
  await expect(rows).toHaveCount(1);
  expect((await other.get('/api/files')).status()).toBe(401);
  await other.dispose();

  // Not an admin: app passwords are files-only, with no choice offered.
  await page.goto('/settings/app-passwords');
  await expect(page.getByTestId('app-password-name')).toBeVisible();
  await expect(page.getByTestId('app-password-scope-admin')).toHaveCount(0);

  // Signing out this device from the list is an ordinary sign-out.
  await page.goto('/settings/sessions');
  await mine.getByTestId('session-sign-out').click();
  await page.getByRole('button', { name: 'Confirm' }).click();
  await expect(page).toHaveURL(/\/signin/);
  expect((await page.request.get('/api/files')).status()).toBe(401);
});

test("an admin chooses an app password's scope, and removes a user's two-factor sign-in", async ({
  page,
  playwright,
  baseURL,
}) => {
  // A user with TOTP on, who lost their phone.
  const username = uniqueName('lost');
  const user = await playwright.request.newContext({ baseURL });
  await signUpViaApi(user, username);
  const { secret } = (await (await user.post('/api/auth/totp', { data: { password: PASSWORD } })).json()) as {
    secret: string;
  };
  const code = new TOTP({ secret: Secret.fromBase32(secret) }).generate();
  expect((await user.post('/api/auth/totp/confirm', { data: { code } })).status()).toBe(204);
  const bare = await user.post('/api/auth/signin', { data: { username, password: PASSWORD } });
  expect(bare.status()).toBe(401);

  await signInAsAdmin(page);

  await page.goto('/settings/app-passwords');
  const name = uniqueName('ops script');
  await page.getByTestId('app-password-name').locator('input').fill(name);
  await page.getByTestId('app-password-scope-admin').click();
  await page.getByTestId('app-password-create').click();
  const adminSecret = await page.getByTestId('app-password-secret').locator('input').inputValue();
  await expect(page.locator(`[data-testid=app-password-row][data-name="${name}"]`)).toContainText(
    'Files and administration',
  );
  const script = await playwright.request.newContext({
    baseURL,
    extraHTTPHeaders: { authorization: `Bearer ${adminSecret}` },
  });
  expect((await script.get('/api/admin/users')).status()).toBe(200);
  await script.dispose();

  await page.goto('/admin/users');
  await page.getByTestId(`reset-two-factor-${username}`).click();
  await page.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.locator('.n-message')).toContainText(`Two-factor sign-in removed for ${username}`);
  expect((await user.post('/api/auth/signin', { data: { username, password: PASSWORD } })).status()).toBe(
    200,
  );
  await user.dispose();
});
