import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import yauzl from 'yauzl';
import { expect, fileRow, randomFile, signUpViaApi, test, uniqueName, uploadViaApi } from './helpers.ts';

/** Every file entry of a ZIP on disk with its SHA-1, read by a separate unzip library. */
function unzipSha1s(zipPath: string): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipPath, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err);
      const out = new Map<string, string>();
      zip.on('error', reject);
      zip.on('end', () => resolve(out));
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName.endsWith('/')) return zip.readEntry();
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e);
          const h = createHash('sha1');
          stream.on('data', (b: Buffer) => h.update(b));
          stream.on('end', () => {
            out.set(entry.fileName, h.digest('hex'));
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

test('a folder downloads as one ZIP whose entries match the originals', async ({ page }, testInfo) => {
  await signUpViaApi(page.request, uniqueName('zane'));
  const folder = async (name: string, parentId?: string) =>
    (await (await page.request.post('/api/folders', { data: { name, parentId } })).json()).file.id as string;
  const album = await folder('Album');
  const inner = await folder('Inner', album);
  const dir = testInfo.outputPath('files');
  const a = randomFile(dir, 'a.bin', 3 * 1024 * 1024 + 5);
  const b = randomFile(dir, 'b.txt', 2000);
  await uploadViaApi(page.request, a.path, album);
  await uploadViaApi(page.request, b.path, inner);

  await page.goto('/files');
  await fileRow(page, 'Album').locator('.n-checkbox').click();
  await expect(page.getByTestId('bulk-download')).toHaveText('Download as ZIP');
  const download = page.waitForEvent('download');
  await page.getByTestId('bulk-download').click();
  const zip = await download;
  expect(zip.suggestedFilename()).toBe('Album.zip');
  const saved = testInfo.outputPath('Album.zip');
  await zip.saveAs(saved);
  expect(readFileSync(saved).length).toBeGreaterThan(a.sha1.length);
  const entries = await unzipSha1s(saved);
  expect(Object.fromEntries(entries)).toEqual({ 'Album/a.bin': a.sha1, 'Album/Inner/b.txt': b.sha1 });
});
