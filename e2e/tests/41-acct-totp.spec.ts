import { readFileSync } from 'node:fs';
import { Secret, TOTP } from 'otpauth';
import { expect, PASSWORD, signUpViaApi, test, uniqueName } from './helpers.ts';

/** What an authenticator app would show at `at` (RFC 6238's defaults, as the QR code says). */
const codeAt = (secret: string, at: number) =>
  new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({
    timestamp: at,
  });
const otherThan = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

test('a user turns on two-factor sign-in, signs out, signs in with a code, and turns it off with a recovery code', async ({
  page,
}) => {
  const username = uniqueName('totp');
  await signUpViaApi(page.request, username);

  await page.goto('/files');
  await page.getByTestId('user-menu').click();
  await page.getByTestId('menu-two-factor').click();
  await expect(page).toHaveURL(/\/settings\/two-factor/);
  // The password again before a new factor; then the QR code.
  await page.getByTestId('totp-setup-password').fill(PASSWORD);
  await page.getByTestId('totp-setup-start').click();
  await expect(page.getByTestId('totp-qr')).toBeVisible();
  await expect(page.getByRole('img', { name: 'QR code for your authenticator app' })).toBeVisible();
  const secret = (await page.getByTestId('totp-secret').textContent())?.trim() ?? '';
  expect(secret).toMatch(/^[A-Z2-7]{32}$/);

  // A wrong code is refused and the setup stays; the right one turns it on.
  await page.getByTestId('totp-confirm-code').fill(otherThan(codeAt(secret, Date.now())));
  await page.getByTestId('totp-confirm').click();
  await expect(page.getByTestId('totp-error')).toContainText('The code is wrong, expired or already used');
  await page.getByTestId('totp-confirm-code').fill(codeAt(secret, Date.now()));
  await page.getByTestId('totp-confirm').click();

  // The recovery codes, once, to copy or download.
  const codes = page.getByTestId('totp-recovery-codes').locator('li');
  await expect(codes).toHaveCount(10);
  const recovery = (await codes.allTextContents()).map((c) => c.trim());
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('totp-recovery-download').click(),
  ]);
  expect(download.suggestedFilename()).toBe('dfs-recovery-codes.txt');
  expect(
    readFileSync((await download.path()) ?? '', 'utf8')
      .trim()
      .split('\n'),
  ).toEqual(recovery);
  await page.getByTestId('totp-recovery-done').click();
  await expect(page.getByTestId('totp-recovery')).toBeHidden();
  await expect(page.getByTestId('totp-on')).toContainText('Recovery codes left: 10');

  await page.getByTestId('user-menu').click();
  await page.getByText('Sign out').click();
  await expect(page).toHaveURL(/\/signin/);

  // The password, then the code.
  await page.locator('input[name=username]').fill(username);
  await page.locator('input[name=password]').fill(PASSWORD);
  await page.getByTestId('auth-submit').click();
  await expect(page.getByTestId('auth-code-lead')).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Two-factor sign-in' })).toBeVisible();
  await page.getByTestId('auth-code').fill(otherThan(codeAt(secret, Date.now() + 30_000)));
  await page.getByTestId('auth-submit').click();
  await expect(page.getByTestId('auth-error')).toContainText('The code is wrong, expired or already used');
  // The code that confirmed the setup is spent: the app's next one (a step ahead is accepted).
  await page.getByTestId('auth-code').fill(codeAt(secret, Date.now() + 30_000));
  await page.getByTestId('auth-submit').click();
  await expect(page).toHaveURL(/\/files/);

  // This session passed the code: it may create app passwords.
  const made = await page.request.post('/api/auth/app-passwords', { data: { name: 'sync' } });
  expect(made.status(), await made.text()).toBe(201);

  // Turned off with a recovery code: the password alone signs in again.
  await page.goto('/settings/two-factor');
  await page.getByTestId('totp-off-code').fill(recovery[0] ?? '');
  await page.getByTestId('totp-off').click();
  await expect(page.getByTestId('totp-off-state')).toBeVisible();
  const again = await page.request.post('/api/auth/signin', { data: { username, password: PASSWORD } });
  expect(again.status()).toBe(200);
});
