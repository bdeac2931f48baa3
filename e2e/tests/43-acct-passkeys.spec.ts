import { expect, PASSWORD, test, uniqueName } from './helpers.ts';

/**
 * Chromium treats only http://localhost (not 127.0.0.1) as a secure context with a valid RP ID:
 * the server listens on 127.0.0.1, and this spec browses it by name.
 */
const base = () => (process.env.DFS_E2E_BASE_URL ?? '').replace('//127.0.0.1:', '//localhost:');

test('a user adds a passkey, signs in with it without a password, and as the second factor', async ({
  page,
}) => {
  // Chromium's virtual authenticator: a platform authenticator with discoverable credentials and
  // a user who always passes verification (as with a fingerprint).
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  const username = uniqueName('passkey');
  const up = await page.request.post(`${base()}/api/auth/signup`, { data: { username, password: PASSWORD } });
  expect(up.status(), await up.text()).toBe(201);
  const inn = await page.request.post(`${base()}/api/auth/signin`, {
    data: { username, password: PASSWORD },
  });
  expect(inn.status()).toBe(200);

  await page.goto(`${base()}/settings/two-factor`);
  await expect(page.getByTestId('passkeys-none')).toBeVisible();
  await page.getByTestId('passkey-add').click();
  await page.getByTestId('passkey-name-input').fill('This laptop');
  // A wrong password is refused before the authenticator is asked.
  await page.getByTestId('passkey-password').fill('not my password');
  await page.getByTestId('passkey-submit').click();
  await expect(page.getByTestId('passkey-error')).toContainText('The password is not right');
  await page.getByTestId('passkey-password').fill(PASSWORD);
  await page.getByTestId('passkey-submit').click();
  await expect(page.getByTestId('passkey-name')).toHaveText('This laptop');
  await expect(page.getByTestId('passkey-item')).toContainText('never used');
  // TOTP is off, but the password alone no longer signs in: the page says so.
  await expect(page.getByTestId('totp-off-state')).toContainText('Your passkeys are your second factor');
  const stored = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  expect(stored.credentials).toHaveLength(1);
  expect(stored.credentials[0]?.isResidentCredential).toBe(true);

  await page.getByTestId('user-menu').click();
  await page.getByText('Sign out').click();
  await expect(page).toHaveURL(/\/signin/);

  // Password-less: no username typed, the authenticator says who.
  await page.getByTestId('passkey-signin').click();
  await expect(page).toHaveURL(/\/files/);
  await expect(page.getByTestId('user-menu')).toHaveAttribute('title', username);
  // That session counts as two factors: it may create app passwords.
  const made = await page.request.post(`${base()}/api/auth/app-passwords`, { data: { name: 'sync' } });
  expect(made.status(), await made.text()).toBe(201);

  await page.getByTestId('user-menu').click();
  await page.getByText('Sign out').click();
  await expect(page).toHaveURL(/\/signin/);

  // The password alone is not enough now: the passkey finishes the sign-in.
  await page.locator('input[name=username]').fill(username);
  await page.locator('input[name=password]').fill(PASSWORD);
  await page.getByTestId('auth-submit').click();
  await expect(page.getByTestId('passkey-second-lead')).toBeVisible();
  // No code to type for an account whose only second factor is a passkey.
  await expect(page.getByTestId('auth-code')).toHaveCount(0);
  await page.getByTestId('passkey-second').click();
  await expect(page).toHaveURL(/\/files/);

  await page.goto(`${base()}/settings/two-factor`);
  await expect(page.getByTestId('passkey-item')).toContainText('last used');
  const used = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  expect(used.credentials[0]?.signCount).toBeGreaterThanOrEqual(2);
});
