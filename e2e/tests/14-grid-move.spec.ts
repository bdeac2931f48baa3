import {
  expect,
  fileRow,
  findByName,
  listFolder,
  screenshot,
  signUpViaApi,
  test,
  uniqueName,
} from './helpers.ts';

test('the grid shows a server-made thumbnail; the view choice is remembered', async ({ page }) => {
  await signUpViaApi(page.request, uniqueName('gina'));
  await page.goto('/files');
  // A real photo-sized JPEG, drawn in the page and uploaded as the browser would.
  const status = await page.evaluate(async () => {
    const canvas = document.createElement('canvas');
    canvas.width = 640;
    canvas.height = 480;
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = '#2a9d8f';
    ctx.fillRect(0, 0, 640, 480);
    ctx.fillStyle = '#e9c46a';
    ctx.fillRect(100, 100, 300, 200);
    const blob = await new Promise<Blob>((r) => canvas.toBlob((b) => r(b!), 'image/jpeg', 0.9));
    const form = new FormData();
    form.append('file', new File([blob], 'sunset.jpg', { type: 'image/jpeg' }));
    return (await fetch('/api/files', { method: 'POST', body: form })).status;
  });
  expect(status).toBe(201);
  await page.request.post('/api/folders', { data: { name: 'Photos' } });
  await page.reload();

  await page.getByTestId('view-grid').click();
  const tile = fileRow(page, 'sunset.jpg');
  await expect(tile).toBeVisible();
  const img = tile.getByTestId('tile-thumbnail');
  await expect.poll(() => img.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth)).toBe(320);
  expect(await img.getAttribute('src')).toMatch(/\/api\/files\/[^/]+\/thumbnail$/);
  await screenshot(page, 'files-grid');
  // A folder gets its icon, not a broken image.
  await expect(fileRow(page, 'Photos').getByTestId('tile-thumbnail')).toHaveCount(0);

  // A PDF shows its first page (pdftoppm on the server): 200 × 100 pt is 320 × 160.
  const res = await page.request.post('/api/files', {
    multipart: { file: { name: 'letter.pdf', mimeType: 'application/pdf', buffer: onePagePdf() } },
  });
  expect(res.status()).toBe(201);
  await page.reload();
  const page1 = fileRow(page, 'letter.pdf').getByTestId('tile-thumbnail');
  await expect
    .poll(() => page1.evaluate((el: HTMLImageElement) => `${el.naturalWidth}x${el.naturalHeight}`))
    .toBe('320x160');

  // Double-click on a tile opens the viewer, as in the list.
  await tile.dblclick();
  await expect(page.getByTestId('preview-image')).toBeVisible();
  await page.keyboard.press('Escape');

  await page.reload();
  await expect(page.getByTestId('file-grid')).toBeVisible();
  await page.getByTestId('view-list').click();
  await expect(page.getByTestId('file-grid')).toHaveCount(0);
});

test('drag rows onto a folder or a breadcrumb to move them', async ({ page }) => {
  await signUpViaApi(page.request, uniqueName('drew'));
  const post = async (name: string, parentId?: string) =>
    page.request.post(`/api/files${parentId ? `?parentId=${parentId}` : ''}`, {
      multipart: { file: { name, mimeType: 'text/plain', buffer: Buffer.from(name) } },
    });
  const target = (await (await page.request.post('/api/folders', { data: { name: 'Target' } })).json()).file;
  for (const name of ['one.txt', 'two.txt', 'three.txt']) expect((await post(name)).status()).toBe(201);

  await page.goto('/files');
  // One row onto a folder row.
  await fileRow(page, 'one.txt').dragTo(fileRow(page, 'Target'));
  await expect(fileRow(page, 'one.txt')).toHaveCount(0);
  expect((await findByName(page.request, target.id, 'one.txt')).name).toBe('one.txt');

  // A selection of two, dragged by one of them.
  await fileRow(page, 'two.txt').click();
  await fileRow(page, 'three.txt').click({ modifiers: ['Control'] });
  await fileRow(page, 'three.txt').dragTo(fileRow(page, 'Target'));
  await expect(fileRow(page, 'two.txt')).toHaveCount(0);
  await expect(fileRow(page, 'three.txt')).toHaveCount(0);
  expect((await listFolder(page.request, target.id)).map((f) => f.name).sort()).toEqual([
    'one.txt',
    'three.txt',
    'two.txt',
  ]);

  // From inside the folder back up onto the root breadcrumb.
  await fileRow(page, 'Target').dblclick();
  await expect(fileRow(page, 'one.txt')).toBeVisible();
  await fileRow(page, 'one.txt').dragTo(page.getByTestId('crumb-root'));
  await expect(fileRow(page, 'one.txt')).toHaveCount(0);
  expect((await findByName(page.request, null, 'one.txt')).parentId).toBeNull();
});

/** A one-page PDF of 200 × 100 pt, written by hand with the offsets its cross-reference table needs. */
function onePagePdf(): Buffer {
  const paint = '0 0 1 rg 0 0 200 100 re f';
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R >>',
    `<< /Length ${paint.length} >>\nstream\n${paint}\nendstream`,
  ];
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const o of offsets) out += `${String(o).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}
