import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

interface Unzipped {
  path: string;
  directory: boolean;
  sha1: string;
  size: number;
}

/** Reads every entry of a ZIP with a separate, well-used reader: what a user's unzip would see. */
function unzip(zip: Buffer): Promise<Unzipped[]> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true, strictFileNames: true }, (err, file) => {
      if (err || !file) return reject(err);
      const out: Unzipped[] = [];
      file.on('error', reject);
      file.on('end', () => resolve(out));
      file.on('entry', (entry: yauzl.Entry) => {
        const directory = entry.fileName.endsWith('/');
        if (directory) {
          out.push({ path: entry.fileName, directory, sha1: '', size: 0 });
          return file.readEntry();
        }
        file.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e);
          const h = createHash('sha1');
          let size = 0;
          stream.on('data', (b: Buffer) => {
            h.update(b);
            size += b.length;
          });
          stream.on('end', () => {
            out.push({ path: entry.fileName, directory, sha1: h.digest('hex'), size });
            file.readEntry();
          });
        });
      });
      file.readEntry();
    });
  });
}

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

describe('ZIP downloads of a selection', () => {
  let t: TestApp;
  let clock = Date.now();
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let bob: Awaited<ReturnType<TestApp['user']>>;
  const big = random(3 * CHUNK + 17);
  const small = random(1000);
  const photo = random(5000);
  const ids: Record<string, string> = {};

  const folder = async (name: string, parentId?: string) => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/folders',
      headers: alice.headers,
      payload: { name, ...(parentId ? { parentId } : {}) },
    });
    expect(res.statusCode).toBe(201);
    return res.json().file.id as string;
  };
  const archive = (ids: string[], who = alice, name?: string) =>
    t.app.inject({
      method: 'POST',
      url: '/api/archives',
      headers: who.headers,
      payload: { ids, ...(name ? { name } : {}) },
    });
  const fetchZip = (url: string, who = alice) => t.app.inject({ url, headers: who.headers });

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) }, { now: () => clock });
    alice = await t.user('alice');
    bob = await t.user('bob');
    const up = uploader(t, alice.headers);
    ids.trip = await folder('Trip 2026');
    ids.day1 = await folder('Day 1', ids.trip);
    ids.empty = await folder('Nothing yet', ids.trip);
    ids.big = (await up.upload(big, 'video part.bin', ids.day1)).id;
    ids.photo = (await up.upload(photo, '照片.jpg', ids.day1)).id;
    ids.small = (await up.upload(small, 'notes.txt', ids.trip)).id;
    ids.loose = (await up.upload(small, 'notes.txt')).id;
  });
  afterAll(() => t.close());

  it('streams a folder with everything in it, each entry byte-identical, with an exact length', async () => {
    const res = await archive([ids.trip!]);
    expect(res.statusCode).toBe(201);
    const made = res.json();
    expect(made.name).toBe('Trip 2026.zip');
    expect(made.url).toMatch(/^\/api\/archives\/[A-Za-z0-9_-]{32,}$/);

    const zip = await fetchZip(made.url);
    expect(zip.statusCode).toBe(200);
    expect(zip.headers['content-type']).toBe('application/zip');
    expect(zip.headers['content-disposition']).toBe('attachment; filename="Trip 2026.zip"');
    expect(Number(zip.headers['content-length'])).toBe(zip.rawPayload.length);
    const entries = await unzip(zip.rawPayload);
    expect(entries.map((e) => e.path).sort()).toEqual([
      'Trip 2026/Day 1/video part.bin',
      'Trip 2026/Day 1/照片.jpg',
      'Trip 2026/Nothing yet/',
      'Trip 2026/notes.txt',
    ]);
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect(byPath.get('Trip 2026/Day 1/video part.bin')).toMatchObject({ sha1: sha1(big), size: big.length });
    expect(byPath.get('Trip 2026/Day 1/照片.jpg')?.sha1).toBe(sha1(photo));
    expect(byPath.get('Trip 2026/notes.txt')?.sha1).toBe(sha1(small));
  });

  it('names colliding top-level entries apart, and takes a chosen name', async () => {
    const res = await archive([ids.small!, ids.loose!, ids.photo!], alice, 'picked');
    expect(res.json().name).toBe('picked.zip');
    const entries = await unzip((await fetchZip(res.json().url)).rawPayload);
    expect(entries.map((e) => e.path)).toEqual(['notes.txt', 'notes (2).txt', '照片.jpg']);
  });

  it('makes every name a plain file name for any extractor, Windows included', async () => {
    const risky = [
      '..\\..\\evil.txt',
      'C:\\Windows\\x',
      '\\\\server\\share.txt',
      'a\\b.txt',
      'stream:hidden.txt',
      'CON.txt',
      'lpt1',
      'dots...',
      'space ',
      'what?<>|*".txt',
      'bell\u0007.txt',
      'rtl\u202Etxt.exe',
      'Same.TXT',
      'same.txt',
    ];
    const box = await folder('..\\box:1');
    const up = uploader(t, alice.headers);
    for (const name of risky) await up.upload(Buffer.from(name), name, box);
    const res = await archive([box], alice, 'C:\\temp\\..\\out');
    expect(res.statusCode).toBe(201);
    expect(res.json().name).toBe('C_temp_.._out.zip');
    const zip = await fetchZip(res.json().url);
    expect(zip.statusCode).toBe(200);
    expect(zip.headers['content-disposition']).toContain('filename="C_temp_.._out.zip"');
    const entries = await unzip(zip.rawPayload);
    expect(entries).toHaveLength(risky.length);
    for (const { path } of entries) {
      const segments = path.split('/');
      expect(segments, path).toHaveLength(2);
      expect(segments[0]).toBe('_box_1');
      for (const segment of segments) {
        expect(segment, path).not.toMatch(/[\\:*?"<>|\p{Cc}\p{Cf}]|^\.\.?$|[. ]$/u);
        expect(segment, path).not.toMatch(/^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$/i);
      }
    }
    const names = entries.map((e) => e.path.slice('_box_1/'.length));
    expect(new Set(names.map((n) => n.toLowerCase())).size).toBe(risky.length);
    expect(names).toEqual(
      expect.arrayContaining(['_.._evil.txt', 'C_Windows_x', '_server_share.txt', 'a_b.txt', 'CON_.txt']),
    );
    expect(names).toEqual(expect.arrayContaining(['Same.TXT', 'same (2).txt']));
    // Each entry still holds its own file's bytes.
    const bytes = new Map(risky.map((n) => [sha1(Buffer.from(n)), n]));
    expect(new Set(entries.map((e) => bytes.get(e.sha1))).size).toBe(risky.length);
  });

  it('refuses what is not yours or not there, and links that expired or belong to someone else', async () => {
    const foreign = await archive([ids.trip!], bob);
    expect(foreign.statusCode).toBe(404);
    expect(errorCode(foreign)).toBe('not_found');
    expect((await archive([])).statusCode).toBe(400);
    expect((await archive(['no-such-id'])).statusCode).toBe(404);

    const made = (await archive([ids.day1!])).json();
    expect((await fetchZip(made.url, bob)).statusCode).toBe(404);
    expect((await t.app.inject({ url: made.url })).statusCode).toBe(401);
    clock += 11 * 60_000;
    const late = await fetchZip(made.url);
    expect(late.statusCode).toBe(404);
    expect(late.json().error.message).toContain('expired');
  });

  it('leaves out what went to the trash after the link was made', async () => {
    const made = (await archive([ids.day1!])).json();
    const trashed = await t.app.inject({
      method: 'DELETE',
      url: `/api/files/${ids.photo}`,
      headers: alice.headers,
    });
    expect(trashed.statusCode).toBe(204);
    const entries = await unzip((await fetchZip(made.url)).rawPayload);
    expect(entries.map((e) => e.path)).toEqual(['Day 1/video part.bin']);
  });
});
