import { readdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

async function cachedFiles(dataDir: string): Promise<string[]> {
  const root = path.join(dataDir, 'thumbnails');
  const out: string[] = [];
  for (const sub of await readdir(root).catch(() => [] as string[])) {
    for (const f of await readdir(path.join(root, sub))) out.push(f);
  }
  return out.sort();
}

describe('thumbnails', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let bob: Awaited<ReturnType<TestApp['user']>>;
  let photo: Buffer;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) });
    alice = await t.user('alice');
    bob = await t.user('bob');
    photo = await sharp({ create: { width: 800, height: 600, channels: 3, background: '#3366cc' } })
      .jpeg()
      .toBuffer();
  });
  afterAll(() => t.close());

  const thumb = (id: string, who = alice, headers: Record<string, string> = {}) =>
    t.app.inject({ url: `/api/files/${id}/thumbnail`, headers: { ...who.headers, ...headers } });

  it('makes a small WebP once per content and shares it between users who store the bytes', async () => {
    const mine = await uploader(t, alice.headers).upload(photo, 'holiday.jpg');
    const theirs = await uploader(t, bob.headers).upload(photo, 'copy of holiday.JPG');
    // Two at once: one decode.
    const [a, b] = await Promise.all([thumb(mine.id), thumb(mine.id)]);
    expect(a.statusCode).toBe(200);
    expect(a.headers['content-type']).toBe('image/webp');
    expect(a.rawPayload.equals(b.rawPayload)).toBe(true);
    const meta = await sharp(a.rawPayload).metadata();
    expect(meta).toMatchObject({ format: 'webp', width: 320, height: 240 });
    expect(a.rawPayload.length).toBeLessThan(photo.length);

    const other = await thumb(theirs.id, bob);
    expect(other.rawPayload.equals(a.rawPayload)).toBe(true);
    const sha1 = (await t.app.inject({ url: `/api/files/${mine.id}`, headers: alice.headers })).json().file
      .sha1;
    expect(await cachedFiles(t.dataDir)).toEqual([`${sha1}.webp`]);

    // Cached by the browser too: the bytes behind a file never change.
    expect(a.headers['cache-control']).toContain('immutable');
    expect((await thumb(mine.id, alice, { 'if-none-match': String(a.headers.etag) })).statusCode).toBe(304);
    // Not someone else's file.
    expect((await thumb(mine.id, bob)).statusCode).toBe(404);
  });

  it('answers 404 for files that are not images, and remembers images that do not decode', async () => {
    const text = await uploader(t, alice.headers).upload(random(100), 'notes.txt');
    expect((await thumb(text.id)).statusCode).toBe(404);
    const broken = await uploader(t, alice.headers).upload(random(3000), 'broken.png');
    const res = await thumb(broken.id);
    expect(res.statusCode).toBe(404);
    expect(res.json().error.message).toContain('could not be decoded');
    expect((await cachedFiles(t.dataDir)).filter((f) => f.endsWith('.failed'))).toHaveLength(1);
    expect((await thumb(broken.id)).statusCode).toBe(404);
  });
});
