import { expect, signUpViaApi, test, uniqueName } from './helpers.ts';

test('an app password is made in the user menu, shown once, works as a token, and is revoked', async ({
  page,
  playwright,
  baseURL,
}) => {
  await signUpViaApi(page.request, uniqueName('apo'));
  await page.goto('/files');
  await page.getByTestId('user-menu').click();
  await page.getByTestId('menu-app-passwords').click();
  await expect(page).toHaveURL(/\/settings\/app-passwords/);

  await page.getByTestId('app-password-name').locator('input').fill('backup script');
  await page.getByTestId('app-password-create').click();
  const secret = await page.getByTestId('app-password-secret').locator('input').inputValue();
  expect(secret).toMatch(/^dfsapp_/);
  await expect(page.locator('[data-testid=app-password-row][data-name="backup script"]')).toContainText(
    'never',
  );

  // A program with only the app password (no cookie) gets in.
  const program = await playwright.request.newContext({
    baseURL,
    extraHTTPHeaders: { authorization: `Bearer ${secret}` },
  });
  expect((await program.get('/api/files')).status()).toBe(200);

  // Shown once: after a reload the page lists it but cannot show the secret again.
  await page.reload();
  await expect(page.getByTestId('app-password-secret')).toHaveCount(0);
  await expect(page.locator('[data-testid=app-password-row][data-name="backup script"]')).not.toContainText(
    'never',
  );

  await page
    .locator('[data-testid=app-password-row][data-name="backup script"]')
    .getByTestId('app-password-revoke')
    .click();
  await page.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.locator('[data-testid=app-password-row]')).toHaveCount(0);
  expect((await program.get('/api/files')).status()).toBe(401);
  await program.dispose();
});
