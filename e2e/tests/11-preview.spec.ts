import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, fileRow, screenshot, signUpViaApi, test, uniqueName, uploadViaApi } from './helpers.ts';

/** A valid 1×1 PNG. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

/** Half a second of a 440 Hz tone as 16-bit PCM WAV: every browser plays it. */
function wav(): Buffer {
  const rate = 8000;
  const samples = rate / 2;
  const out = Buffer.alloc(44 + samples * 2);
  out.write('RIFF', 0);
  out.writeUInt32LE(36 + samples * 2, 4);
  out.write('WAVEfmt ', 8);
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20); // PCM
  out.writeUInt16LE(1, 22); // mono
  out.writeUInt32LE(rate, 24);
  out.writeUInt32LE(rate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36);
  out.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i++)
    out.writeInt16LE(Math.round(Math.sin((i * 2 * Math.PI * 440) / rate) * 8000), 44 + i * 2);
  return out;
}

test('files open in a viewer: image, text, audio, active content as text, arrows step through', async ({
  page,
}, testInfo) => {
  await signUpViaApi(page.request, uniqueName('vera'));
  const dir = testInfo.outputPath('files');
  mkdirSync(dir, { recursive: true });
  const put = async (name: string, bytes: Buffer | string) => {
    writeFileSync(path.join(dir, name), bytes);
    return uploadViaApi(page.request, path.join(dir, name));
  };
  await put('a-dot.png', PNG);
  await put('b-notes.md', '# Notes\n\nplain text, ünïcödé ✓\n');
  await put('c-tone.wav', wav());
  // Active content: shown as source, never rendered in the app's origin.
  await put('d-page.html', '<h1 id="injected">hi</h1><script>window.__pwned = 1</script>');
  await put('e-big.log', `${'0123456789abcdef'.repeat(80 * 1024)}tail`);
  await put('f-data.bin', Buffer.from([0, 1, 2, 3, 0, 0, 255]));

  await page.goto('/files');
  await fileRow(page, 'a-dot.png').dblclick();
  const viewer = page.getByTestId('preview');
  await expect(viewer).toBeVisible();
  await expect(viewer.getByTestId('preview-name')).toHaveText('a-dot.png');
  // Five of the six files can be previewed; the binary one cannot.
  await expect(viewer.getByTestId('preview-counter')).toHaveText('1 / 5');
  const img = viewer.getByTestId('preview-image');
  await expect.poll(() => img.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth)).toBe(1);

  await page.keyboard.press('ArrowRight');
  await expect(viewer.getByTestId('preview-name')).toHaveText('b-notes.md');
  await expect(viewer.getByTestId('preview-text')).toContainText('plain text, ünïcödé ✓');
  await screenshot(page, 'preview');

  await page.keyboard.press('ArrowRight');
  await expect(viewer.getByTestId('preview-name')).toHaveText('c-tone.wav');
  const audio = viewer.getByTestId('preview-audio');
  await expect.poll(() => audio.evaluate((el: HTMLAudioElement) => el.duration)).toBeCloseTo(0.5, 1);

  await page.keyboard.press('ArrowRight');
  await expect(viewer.getByTestId('preview-name')).toHaveText('d-page.html');
  await expect(viewer.getByTestId('preview-text')).toContainText('<script>window.__pwned = 1</script>');
  expect(await page.locator('#injected').count()).toBe(0);
  expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();

  // A large text file: the first MiB only, fetched with a Range, and the viewer says so.
  const ranges: string[] = [];
  page.on('request', (r) => {
    const range = r.headers().range;
    if (range && r.url().includes('/content')) ranges.push(range);
  });
  await page.keyboard.press('ArrowRight');
  await expect(viewer.getByTestId('preview-name')).toHaveText('e-big.log');
  await expect(viewer.getByTestId('preview-truncated')).toBeVisible();
  expect(ranges).toContain('bytes=0-1048575');
  const shown = await viewer.getByTestId('preview-text').evaluate((el) => el.textContent?.length ?? 0);
  expect(shown).toBe(1024 * 1024);

  // Wraps around; ArrowLeft goes back.
  await page.keyboard.press('ArrowRight');
  await expect(viewer.getByTestId('preview-name')).toHaveText('a-dot.png');
  await page.keyboard.press('ArrowLeft');
  await expect(viewer.getByTestId('preview-name')).toHaveText('e-big.log');

  // Download from the viewer.
  const download = page.waitForEvent('download');
  await viewer.getByTestId('preview-download').click();
  expect((await download).suggestedFilename()).toBe('e-big.log');

  await page.keyboard.press('Escape');
  await expect(viewer).toHaveCount(0);

  // A file the viewer cannot show still downloads on double-click.
  const binary = page.waitForEvent('download');
  await fileRow(page, 'f-data.bin').dblclick();
  expect((await binary).suggestedFilename()).toBe('f-data.bin');
});

test('a shared file previews on the public page; a dead link says why it is dead', async ({
  page,
  browser,
}) => {
  await signUpViaApi(page.request, uniqueName('pia'));
  const file = await (async () => {
    const res = await page.request.post('/api/files', {
      multipart: {
        file: { name: 'readme.txt', mimeType: 'text/plain', buffer: Buffer.from('shared words') },
      },
    });
    return (await res.json()).file as { id: string };
  })();
  const share = (await (await page.request.post(`/api/files/${file.id}/shares`, { data: {} })).json()).share;
  const visitor = await browser.newContext({ baseURL: new URL(share.url).origin });
  const p = await visitor.newPage();
  await p.goto(new URL(share.url).pathname);
  await p.getByTestId('public-preview').click();
  await expect(p.getByTestId('preview-text')).toHaveText('shared words');
  await p.keyboard.press('Escape');

  expect((await page.request.delete(`/api/shares/${share.token}`)).status()).toBe(204);
  await p.reload();
  await expect(p.getByTestId('share-gone')).toContainText('The owner turned this link off.');
  await p.goto('/s/no-such-link-at-all');
  await expect(p.getByTestId('share-gone')).toContainText('This link does not exist.');
  await visitor.close();
});

/** A one-page PDF with the byte offsets its cross-reference table needs. */
function pdf(text: string): Buffer {
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${`BT /F1 24 Tf 40 60 Td (${text}) Tj ET`.length} >>\nstream\nBT /F1 24 Tf 40 60 Td (${text}) Tj ET\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
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

test('a PDF and a video open in the viewer and load', async ({ page }) => {
  await signUpViaApi(page.request, uniqueName('mona'));
  const up = await page.request.post('/api/files', {
    multipart: { file: { name: 'letter.pdf', mimeType: 'application/pdf', buffer: pdf('Hello dfs') } },
  });
  expect(up.status()).toBe(201);
  await page.goto('/files');
  // A real WebM, recorded in the page from a canvas (no video tool needed), uploaded as a user would.
  const status = await page.evaluate(async () => {
    const canvas = document.createElement('canvas');
    canvas.width = 160;
    canvas.height = 120;
    const ctx = canvas.getContext('2d')!;
    const stream = canvas.captureStream(15);
    const rec = new MediaRecorder(stream, { mimeType: 'video/webm' });
    const parts: Blob[] = [];
    rec.ondataavailable = (e) => parts.push(e.data);
    const done = new Promise((r) => (rec.onstop = r));
    rec.start();
    for (let i = 0; i < 15; i++) {
      ctx.fillStyle = `hsl(${i * 24}, 80%, 50%)`;
      ctx.fillRect(0, 0, 160, 120);
      await new Promise((r) => setTimeout(r, 60));
    }
    rec.stop();
    await done;
    const form = new FormData();
    form.append('file', new File(parts, 'clip.webm', { type: 'video/webm' }));
    return (await fetch('/api/files', { method: 'POST', body: form })).status;
  });
  expect(status).toBe(201);
  await page.reload();

  await fileRow(page, 'clip.webm').dblclick();
  const video = page.getByTestId('preview-video');
  await expect(video).toBeVisible();
  await expect
    .poll(() => video.evaluate((v: HTMLVideoElement) => v.readyState >= 2 && v.videoWidth))
    .toBe(160);
  await page.keyboard.press('Escape');

  // The PDF opens inline in the browser's own viewer, still under the download's sandbox policy.
  const pdfResponse = page.waitForResponse((r) => r.url().includes('/content?inline=1'));
  await fileRow(page, 'letter.pdf').dblclick();
  await expect(page.getByTestId('preview-pdf')).toBeVisible();
  const headers = await (await pdfResponse).allHeaders();
  expect(headers['content-type']).toBe('application/pdf');
  expect(headers['content-disposition']).toMatch(/^inline/);
  expect(headers['content-security-policy']).toContain('sandbox');
  const frame = page.frame({ url: /\/content\?inline=1$/ });
  await expect.poll(() => frame?.evaluate(() => document.contentType)).toBe('application/pdf');
});
