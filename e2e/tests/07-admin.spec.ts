import { expect, screenshot, test } from './helpers.ts';

test('the admin sees the storage nodes; the UI switches to Chinese and remembers it', async ({ page }) => {
  const admin = JSON.parse(process.env.DFS_E2E_ADMIN ?? '{}') as { username: string; password: string };
  await page.goto('/signin');
  await page.locator('input[name=username]').fill(admin.username);
  await page.locator('input[name=password]').fill(admin.password);
  await page.getByTestId('auth-submit').click();
  await expect(page).toHaveURL(/\/files/);

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
