import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

describe('downloads', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  const data = random(CHUNK * 2 + 500);
  let file: { id: string; sha1: string };
  const get = (url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') =>
    t.app.inject({ method, url, headers: { ...alice.headers, ...headers } });

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) });
    alice = await t.user('alice');
    file = await uploader(t, alice.headers).upload(data, 'photo.png');
  });
  afterAll(() => t.close());

  it('streams the whole file with ETag, nosniff and an attachment disposition', async () => {
    const res = await get(`/api/files/${file.id}/content`);
    expect(res.statusCode).toBe(200);
    expect(res.rawPayload.equals(data)).toBe(true);
    expect(res.headers.etag).toBe(`"${file.sha1}"`);
    expect(res.headers['content-type']).toBe('image/png');
    expect(res.headers['content-length']).toBe(String(data.length));
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(res.headers['content-disposition']).toBe('attachment; filename="photo.png"');
  });

  it('answers If-None-Match with 304 and HEAD with headers only', async () => {
    expect(
      (await get(`/api/files/${file.id}/content`, { 'if-none-match': `"${file.sha1}"` })).statusCode,
    ).toBe(304);
    expect(
      (await get(`/api/files/${file.id}/content`, { 'if-none-match': `W/"x", "${file.sha1}"` })).statusCode,
    ).toBe(304);
    expect((await get(`/api/files/${file.id}/content`, { 'if-none-match': '"other"' })).statusCode).toBe(200);
    const head = await get(`/api/files/${file.id}/content`, {}, 'HEAD');
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe(String(data.length));
    expect(head.rawPayload.length).toBe(0);
  });

  it.each([
    ['bytes=0-0', 0, 0],
    ['bytes=10-19', 10, 19],
    [`bytes=${CHUNK - 5}-${CHUNK + 5}`, CHUNK - 5, CHUNK + 5],
    ['bytes=-100', data.length - 100, data.length - 1],
    [`bytes=-${data.length + 50}`, 0, data.length - 1],
    [`bytes=${data.length - 10}-`, data.length - 10, data.length - 1],
    [`bytes=100-${data.length + 1000}`, 100, data.length - 1],
  ])('serves %s as 206', async (range, start, end) => {
    const res = await get(`/api/files/${file.id}/content`, { range });
    expect(res.statusCode).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/${data.length}`);
    expect(res.rawPayload.equals(data.subarray(start, end + 1))).toBe(true);
  });

  it.each([`bytes=${data.length}-`, `bytes=${data.length + 5}-${data.length + 9}`, 'bytes=-0'])(
    'refuses %s with 416',
    async (range) => {
      const res = await get(`/api/files/${file.id}/content`, { range });
      expect(res.statusCode).toBe(416);
      expect(res.headers['content-range']).toBe(`bytes */${data.length}`);
      expect(errorCode(res)).toBe('range_not_satisfiable');
    },
  );

  it('ignores malformed and multi-range headers (whole body)', async () => {
    for (const range of ['bytes=5-1', 'items=0-1', 'bytes=0-1,5-6']) {
      const res = await get(`/api/files/${file.id}/content`, { range });
      expect(res.statusCode).toBe(200);
      expect(res.rawPayload.length).toBe(data.length);
    }
  });

  it('allows inline only for safe types', async () => {
    const inline = await get(`/api/files/${file.id}/content?inline=1`);
    expect(inline.headers['content-disposition']).toMatch(/^inline;/);
    const html = await uploader(t, alice.headers).upload(Buffer.from('<script>alert(1)</script>'), 'x.html');
    const risky = await get(`/api/files/${html.id}/content?inline=1`);
    expect(risky.headers['content-disposition']).toMatch(/^attachment;/);
    expect(risky.headers['content-type']).toMatch(/^text\/html/);
    expect(risky.headers['content-security-policy']).toContain('sandbox');
  });

  it.each([
    'naïve résumé.pdf',
    '报告 2026.docx',
    "quote\"d 'name'.txt",
    'semi;colon,comma.txt',
    `${'长'.repeat(80)}.txt`,
    'emoji 🎉.txt',
  ])('round-trips the name %s through Content-Disposition', async (name) => {
    const f = await uploader(t, alice.headers).upload(random(10), name);
    expect(f.name).toBe(name);
    const res = await get(`/api/files/${f.id}/content`);
    const header = String(res.headers['content-disposition']);
    expect(header.startsWith('attachment;')).toBe(true);
    const star = /filename\*=UTF-8''([^;]+)/.exec(header);
    const plain = /filename="((?:[^"\\]|\\.)*)"/.exec(header);
    const decoded = star ? decodeURIComponent(star[1] as string) : (plain?.[1] ?? '').replace(/\\(.)/g, '$1');
    expect(decoded).toBe(name);
    // Header values must stay ISO-8859-1 safe.
    expect(/^[\x20-\x7e]*$/.test(header)).toBe(true);
  });

  it('serves an empty file and refuses folders', async () => {
    const empty = await uploader(t, alice.headers).upload(Buffer.alloc(0), 'empty.txt');
    const res = await get(`/api/files/${empty.id}/content`);
    expect(res.statusCode).toBe(200);
    expect(res.rawPayload.length).toBe(0);
    const dir = (
      await t.app.inject({
        method: 'POST',
        url: '/api/folders',
        headers: alice.headers,
        payload: { name: 'd' },
      })
    ).json().file;
    expect((await get(`/api/files/${dir.id}/content`)).statusCode).toBe(400);
  });
});
