import AxeBuilder from '@axe-core/playwright';
import { expect, PASSWORD, signInAsAdmin, signUpViaApi, test, uniqueName } from './helpers.ts';

test('an admin disables an account on the users page: it is signed out everywhere until enabled again', async ({
  page,
  browser,
  playwright,
  baseURL,
}) => {
  const username = uniqueName('off');
  const user = await playwright.request.newContext({ baseURL });
  await signUpViaApi(user, username);
  const { secret } = (await (
    await user.post('/api/auth/app-passwords', { data: { name: 'sync' } })
  ).json()) as {
    secret: string;
  };
  const program = await playwright.request.newContext({
    baseURL,
    extraHTTPHeaders: { authorization: `Bearer ${secret}` },
  });
  expect((await program.get('/api/auth/me')).status()).toBe(200);

  const admin = await signInAsAdmin(page);
  await page.goto('/admin/users');
  const row = page.locator(`[data-testid=user-row][data-name="${username}"]`);
  // Nobody disables their own account: the admin's row has no such button.
  await expect(page.locator(`[data-testid=user-row][data-name="${admin.username}"]`)).toBeVisible();
  await expect(page.getByTestId(`disable-${admin.username}`)).toHaveCount(0);

  await page.getByTestId(`disable-${username}`).click();
  await expect(page.locator('.n-popconfirm')).toContainText('signed out everywhere');
  await page.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.locator('.n-message', { hasText: `${username} is disabled` })).toBeVisible();
  await expect(row.getByTestId('disabled-tag')).toHaveText('Disabled');
  // The tag and the row's buttons are readable (WCAG AA contrast) and named.
  const axe = await new AxeBuilder({ page })
    .include(`[data-testid=user-row][data-name="${username}"]`)
    .analyze();
  expect(axe.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual(
    [],
  );

  expect((await user.get('/api/auth/me')).status()).toBe(401);
  expect((await program.get('/api/auth/me')).status()).toBe(401);

  // The person tries to sign in, in English and in Chinese: told plainly, in their language.
  for (const [locale, text] of [
    ['en-US', 'This account is disabled. Ask an administrator to enable it.'],
    ['zh-CN', '此账户已被停用。请联系管理员重新启用。'],
  ] as const) {
    const context = await browser.newContext({ locale });
    const signin = await context.newPage();
    await signin.goto(`${baseURL}/signin`);
    await signin.locator('input[name=username]').fill(username);
    await signin.locator('input[name=password]').fill(PASSWORD);
    await signin.getByTestId('auth-submit').click();
    await expect(signin.getByTestId('auth-error')).toHaveText(text);
    await expect(signin).toHaveURL(/\/signin/);
    await context.close();
  }

  await page.getByTestId(`enable-${username}`).click();
  await expect(page.locator('.n-message', { hasText: `${username} is enabled again` })).toBeVisible();
  await expect(row.getByTestId('disabled-tag')).toHaveCount(0);
  expect((await program.get('/api/auth/me')).status()).toBe(200);
  expect((await user.post('/api/auth/signin', { data: { username, password: PASSWORD } })).status()).toBe(
    200,
  );
  await user.dispose();
  await program.dispose();
});
