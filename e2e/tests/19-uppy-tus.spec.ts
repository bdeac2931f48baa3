import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { expect, findByName, randomFile, signUpViaApi, test, uniqueName } from './helpers.ts';

/**
 * Uppy with its tus plugin, bundled here and served on the app's own origin (a route of the page,
 * not of the server), uploading through the browser's session cookie as a third-party page of
 * the same site would.
 */
async function uppyBundle(): Promise<string> {
  const result = await build({
    stdin: {
      contents: `
        import Uppy from '@uppy/core';
        import Tus from '@uppy/tus';
        window.startUppy = (files) => new Promise((resolve, reject) => {
          const uppy = new Uppy({ autoProceed: false }).use(Tus, {
            endpoint: '/api/tus/',
            chunkSize: 512 * 1024,
            retryDelays: [],
            allowedMetaFields: ['name'],
          });
          for (const f of files) uppy.addFile({ name: f.name, type: 'application/octet-stream', data: f });
          uppy.upload().then((result) => resolve({
            ok: result.successful.map((f) => f.name),
            failed: result.failed.map((f) => String(f.error)),
          }), reject);
        });
      `,
      resolveDir: path.dirname(fileURLToPath(import.meta.url)),
      loader: 'js',
    },
    bundle: true,
    format: 'iife',
    write: false,
    platform: 'browser',
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

test("Uppy's tus plugin uploads two files through /api/tus/", async ({ page }, testInfo) => {
  await signUpViaApi(page.request, uniqueName('uma'));
  const script = await uppyBundle();
  await page.route('**/uppy-test.html', (route) =>
    route.fulfill({
      contentType: 'text/html',
      body: '<!doctype html><title>uppy</title><script src="/uppy-test.js"></script>',
    }),
  );
  await page.route('**/uppy-test.js', (route) =>
    route.fulfill({ contentType: 'text/javascript', body: script }),
  );
  await page.goto('/uppy-test.html');

  const dir = testInfo.outputPath('files');
  const a = randomFile(dir, 'uppy-a.bin', 1536 * 1024 + 77);
  const b = randomFile(dir, 'uppy-b.txt', 9000);
  const result = await page.evaluate(
    async (files) => {
      const made = files.map(
        (f) => new File([Uint8Array.from(atob(f.base64), (c) => c.charCodeAt(0))], f.name),
      );
      return (
        window as unknown as { startUppy: (f: File[]) => Promise<{ ok: string[]; failed: string[] }> }
      ).startUppy(made);
    },
    [a, b].map((f) => ({ name: path.basename(f.path), base64: readFileSync(f.path).toString('base64') })),
  );
  expect(result.failed).toEqual([]);
  expect(result.ok.sort()).toEqual(['uppy-a.bin', 'uppy-b.txt']);
  expect((await findByName(page.request, null, 'uppy-a.bin')).sha1).toBe(a.sha1);
  expect((await findByName(page.request, null, 'uppy-b.txt')).sha1).toBe(b.sha1);
});
