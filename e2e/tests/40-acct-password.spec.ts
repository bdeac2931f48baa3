import { expect, PASSWORD, signInAsAdmin, signUpViaApi, test, uniqueName } from './helpers.ts';

test('a user changes their password from the user menu; their other sessions are signed out', async ({
  page,
  playwright,
  baseURL,
}) => {
  const username = uniqueName('pwc');
  await signUpViaApi(page.request, username);
  // The same account signed in elsewhere (another browser), and a program with an app password.
  const elsewhere = await playwright.request.newContext({ baseURL });
  expect(
    (await elsewhere.post('/api/auth/signin', { data: { username, password: PASSWORD } })).status(),
  ).toBe(200);
  const app = (await (
    await page.request.post('/api/auth/app-passwords', { data: { name: 'sync' } })
  ).json()) as {
    secret: string;
  };

  await page.goto('/files');
  await page.getByTestId('user-menu').click();
  await page.getByTestId('menu-password').click();
  const dialog = page.getByTestId('password-dialog');
  await expect(dialog).toBeVisible();
  // Every field has an accessible name.
  await expect(page.getByLabel('Current password')).toBeVisible();
  await expect(page.getByLabel('New password')).toBeVisible();

  // A wrong current password is refused, and the dialog says so and stays open.
  await page.getByTestId('password-current').fill('not-my-password');
  await page.getByTestId('password-new').fill('a-new-password-1');
  await page.getByTestId('password-confirm').fill('a-new-password-1');
  await page.getByTestId('password-save').click();
  await expect(page.getByTestId('password-error')).toHaveText('The current password is not right');

  // Two different new passwords never reach the server.
  await page.getByTestId('password-current').fill(PASSWORD);
  await page.getByTestId('password-confirm').fill('a-new-password-2');
  await page.getByTestId('password-save').click();
  await expect(dialog).toContainText('The two new passwords differ');

  await page.getByTestId('password-confirm').fill('a-new-password-1');
  await page.getByTestId('password-save').click();
  await expect(dialog).toBeHidden();
  await expect(page.locator('.n-message')).toContainText('Password changed');

  // This session goes on; the other is over; the app password still works.
  await page.reload();
  await expect(page).toHaveURL(/\/files/);
  expect((await elsewhere.get('/api/auth/me')).status()).toBe(401);
  const program = await playwright.request.newContext({
    baseURL,
    extraHTTPHeaders: { authorization: `Bearer ${app.secret}` },
  });
  expect((await program.get('/api/auth/me')).status()).toBe(200);
  expect(
    (await elsewhere.post('/api/auth/signin', { data: { username, password: PASSWORD } })).status(),
  ).toBe(401);
  expect(
    (await elsewhere.post('/api/auth/signin', { data: { username, password: 'a-new-password-1' } })).status(),
  ).toBe(200);
  await elsewhere.dispose();
  await program.dispose();
});

test('an admin resets a user’s password on the users page; that user is signed out', async ({
  page,
  playwright,
  baseURL,
}) => {
  const username = uniqueName('pwr');
  const user = await playwright.request.newContext({ baseURL });
  await signUpViaApi(user, username);
  expect((await user.get('/api/auth/me')).status()).toBe(200);

  await signInAsAdmin(page);
  await page.getByTestId('nav-users').click();
  await expect(page).toHaveURL(/\/admin\/users/);

  await page.getByTestId(`reset-password-${username}`).click();
  const dialog = page.getByTestId('reset-password-dialog');
  await expect(dialog).toContainText(username);
  await page.getByTestId('reset-password-input').fill('short');
  await page.getByTestId('reset-password-save').click();
  await expect(page.getByTestId('reset-password-error')).toContainText('At least 8 characters');
  await page.getByLabel('New password').fill('set-by-the-admin');
  await page.getByTestId('reset-password-save').click();
  await expect(dialog).toBeHidden();
  await expect(page.locator('.n-message')).toContainText(`Password of ${username} set`);

  expect((await user.get('/api/auth/me')).status()).toBe(401);
  expect((await user.post('/api/auth/signin', { data: { username, password: PASSWORD } })).status()).toBe(
    401,
  );
  expect(
    (await user.post('/api/auth/signin', { data: { username, password: 'set-by-the-admin' } })).status(),
  ).toBe(200);
  // The admin's own session is untouched.
  expect((await page.request.get('/api/auth/me')).status()).toBe(200);
  await user.dispose();
});
