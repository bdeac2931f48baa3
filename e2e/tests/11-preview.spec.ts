import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, fileRow, signUpViaApi, test, uniqueName, uploadViaApi } from './helpers.ts';

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
