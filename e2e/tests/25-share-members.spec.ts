import type { Page } from '@playwright/test';
import { expect, fileRow, findByName, screenshot, signUpViaApi, test, uniqueName } from './helpers.ts';

/** Picks a name in the People section's search box and adds it with a role. */
async function addPerson(page: Page, name: string, role: 'Viewer' | 'Editor') {
  const dialog = page.getByTestId('share-dialog');
  await dialog.getByTestId('people-who').click();
  await page.keyboard.type(name);
  await page.locator('.n-base-select-option').filter({ hasText: name }).first().click();
  await dialog.getByTestId('people-role').click();
  await page.locator('.n-base-select-option').filter({ hasText: role }).first().click();
  await dialog.getByTestId('people-add').click();
  await expect(dialog.locator(`[data-testid="people-member"][data-name="${name}"]`)).toBeVisible();
}

test('a folder shared with an editor and a viewer: found under "Shared with me", the editor uploads, the viewer cannot', async ({
  page,
  browser,
}) => {
  const owner = uniqueName('oona');
  const editor = uniqueName('eddie');
  const viewer = uniqueName('vera');
  await signUpViaApi(page.request, owner);
  const made = await page.request.post('/api/folders', { data: { name: 'Team plans' } });
  expect(made.status()).toBe(201);
  const folder = (await made.json()).file as { id: string };

  const editorContext = await browser.newContext();
  const ed = await editorContext.newPage();
  await signUpViaApi(ed.request, editor);
  const viewerContext = await browser.newContext();
  const vi = await viewerContext.newPage();
  await signUpViaApi(vi.request, viewer);

  // The owner shares the folder from its menu: one person as editor, one as viewer.
  await page.goto('/files');
  await fileRow(page, 'Team plans').getByTestId('row-menu').click();
  await page.locator('.n-dropdown-menu').getByText('Share with people', { exact: true }).click();
  await expect(page.getByTestId('people')).toBeVisible();
  await addPerson(page, editor, 'Editor');
  await addPerson(page, viewer, 'Viewer');
  await screenshot(page, 'share-people');
  await page.keyboard.press('Escape');

  // The editor finds it under "Shared with me" and at the top of their files, marked.
  await ed.goto('/files');
  await ed.getByTestId('nav-shared').click();
  const row = ed.locator('[data-testid="shared-row"][data-name="Team plans"]');
  await expect(row).toContainText(owner);
  await expect(row).toContainText('Editor');
  await ed.goto('/files');
  await expect(fileRow(ed, 'Team plans').getByTestId('shared-badge')).toHaveText(`${owner} · Editor`);
  await screenshot(ed, 'shared-in-root');
  await ed.getByTestId('view-grid').click();
  await expect(fileRow(ed, 'Team plans').getByTestId('shared-badge')).toHaveText(`${owner} · Editor`);
  await ed.getByTestId('view-list').click();

  // …opens it and uploads into it: the file is the owner's.
  await fileRow(ed, 'Team plans').dblclick();
  await expect(ed).toHaveURL(new RegExp(`/files/${folder.id}$`));
  await expect(ed.getByTestId('upload-files')).toBeEnabled();
  await ed.getByTestId('upload-input').setInputFiles({
    name: 'plan.txt',
    mimeType: 'text/plain',
    buffer: Buffer.from('the plan, by the editor'),
  });
  await expect(fileRow(ed, 'plan.txt')).toBeVisible();
  expect((await findByName(page.request, folder.id, 'plan.txt')).size).toBe(23);

  // On a phone, in the dark: the list keeps the name, the owner and the role.
  await ed.setViewportSize({ width: 390, height: 844 });
  await ed.emulateMedia({ colorScheme: 'dark' });
  await ed.goto('/shared');
  await expect(ed.locator('[data-testid="shared-row"][data-name="Team plans"]')).toContainText('Editor');
  await screenshot(ed, 'shared-with-me-phone-dark');

  // The viewer sees the folder and the file, and no way to change them.
  await vi.goto(`/files/${folder.id}`);
  await expect(fileRow(vi, 'plan.txt')).toBeVisible();
  await expect(vi.getByTestId('upload-files')).toBeDisabled();
  await expect(vi.getByTestId('new-folder')).toBeDisabled();
  await expect(vi.getByTestId('viewer-note')).toContainText('as a viewer');
  await fileRow(vi, 'plan.txt').getByTestId('row-menu').click();
  const menu = vi.locator('.n-dropdown-menu');
  await expect(menu.getByText('Download', { exact: true })).toBeVisible();
  await expect(menu.getByText('Rename', { exact: true })).toHaveCount(0);
  await expect(menu.getByText('Move to trash', { exact: true })).toHaveCount(0);
  await screenshot(vi, 'shared-viewer');
  // The server refuses it all the same.
  const refused = await vi.request.post('/api/folders', { data: { name: 'nope', parentId: folder.id } });
  expect(refused.status()).toBe(403);

  // The owner sees who has access in the details panel.
  await page.goto('/files');
  await fileRow(page, 'Team plans').getByTestId('row-menu').click();
  await page.locator('.n-dropdown-menu').getByText('Details', { exact: true }).click();
  await expect(page.getByTestId('details-members')).toContainText(editor);
  await expect(page.getByTestId('details-members')).toContainText(viewer);

  // The owner removes the viewer: their next request no longer finds the folder.
  await page.keyboard.press('Escape');
  await fileRow(page, 'Team plans').getByTestId('row-menu').click();
  await page.locator('.n-dropdown-menu').getByText('Share with people', { exact: true }).click();
  const gone = page.locator(`[data-testid="people-member"][data-name="${viewer}"]`);
  await gone.getByTestId('people-remove').click();
  await page.getByRole('button', { name: 'Confirm' }).click();
  await expect(gone).toHaveCount(0);
  expect((await vi.request.get(`/api/files/${folder.id}`)).status()).toBe(404);
  await vi.goto('/shared');
  await expect(vi.getByTestId('empty')).toBeVisible();

  await editorContext.close();
  await viewerContext.close();
});

test('an admin makes a group and puts people in it; a share with the group reaches them', async ({
  page,
  browser,
}) => {
  const admin = JSON.parse(process.env.DFS_E2E_ADMIN ?? '{}') as { username: string; password: string };
  expect((await page.request.post('/api/auth/signin', { data: admin })).status()).toBe(200);
  const member = uniqueName('gus');
  const memberContext = await browser.newContext();
  const gus = await memberContext.newPage();
  await signUpViaApi(gus.request, member);
  const group = uniqueName('family');

  await page.goto('/admin/groups');
  await page.getByTestId('group-name').locator('input').fill(group);
  await page.getByTestId('group-create').click();
  const row = page.locator(`[data-testid="group-row"][data-name="${group}"]`);
  await row.getByTestId('group-manage').click();
  await page.getByTestId('group-member-name').locator('input').fill(member);
  await page.getByTestId('group-member-add').click();
  await expect(page.locator(`[data-testid="group-member"][data-name="${member}"]`)).toBeVisible();
  await screenshot(page, 'groups-members');
  await page.keyboard.press('Escape');
  await expect(row).toContainText('1');

  const made = await page.request.post('/api/folders', { data: { name: `For ${group}` } });
  const folder = (await made.json()).file as { id: string };
  const shared = await page.request.post(`/api/files/${folder.id}/members`, {
    data: { group, role: 'viewer' },
  });
  expect(shared.status()).toBe(201);
  await gus.goto('/shared');
  await expect(gus.locator(`[data-testid="shared-row"][data-name="For ${group}"]`)).toBeVisible();

  await memberContext.close();
});
