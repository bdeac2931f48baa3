import { expect, screenshot, signInAsAdmin, test } from './helpers.ts';

test('the admin sees the storage nodes; the UI switches to Chinese and remembers it', async ({ page }) => {
  const admin = await signInAsAdmin(page);

  await page.getByTestId('nav-nodes').click();
  await expect(page).toHaveURL(/\/admin\/nodes/);
  const table = page.getByTestId('nodes-table');
  await expect(table.getByTestId('node-status').first()).toHaveText('up');
  await expect(table).toContainText('local');
  const { items } = (await (await page.request.get('/api/nodes')).json()) as { items: { name: string }[] };
  for (const n of items) await expect(table).toContainText(n.name);
  await screenshot(page, 'nodes');

  // Draining the only node would leave nowhere to write: the server refuses, the page says why.
  await table.getByTestId('node-drain').first().click();
  await page.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.locator('.n-message')).toContainText(/writable/i);
  const after = (await (await page.request.get('/api/nodes')).json()) as { items: { draining?: boolean }[] };
  expect(after.items.every((n) => !n.draining)).toBe(true);

  // The audit log lists this sign-in; a user filter goes into the export link too.
  await page.getByTestId('nav-audit').click();
  await expect(page).toHaveURL(/\/admin\/audit/);
  const signin = page.getByTestId('audit-row').filter({ hasText: 'Signed in' }).first();
  await expect(signin.getByTestId('audit-who')).toHaveText(admin.username);
  const user = page.getByTestId('audit-user').locator('input');
  await user.fill(admin.username);
  await user.press('Enter');
  await expect(page.getByTestId('audit-export')).toHaveAttribute(
    'href',
    new RegExp(`[?&]user=${admin.username}`),
  );
  await expect(async () => {
    const who = await page.getByTestId('audit-row').getByTestId('audit-who').allTextContents();
    expect(who.length).toBeGreaterThan(0);
    expect(who.every((name) => name === admin.username)).toBe(true);
  }).toPass();
  await screenshot(page, 'audit');
  await page.getByTestId('nav-nodes').click();

  await page.getByTestId('locale-switch').click();
  await page.getByText('简体中文').click();
  await expect(page.getByTestId('nav-files')).toHaveText('文件');
  await page.reload();
  await expect(page.getByTestId('nav-files')).toHaveText('文件');
  await expect(page.getByRole('heading', { name: '存储节点' })).toBeVisible();
});

test('a signed-out visitor is sent to sign in, and a non-admin never sees nodes', async ({ page }) => {
  await page.goto('/admin/nodes');
  await expect(page).toHaveURL(/\/signin\?next=/);
  expect((await page.request.get('/api/nodes')).status()).toBe(401);
});
