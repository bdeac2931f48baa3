import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppInstance, buildApp } from '../../src/app.ts';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

const TUS = { 'tus-resumable': '1.0.0' };
const OCTETS = { 'content-type': 'application/offset+octet-stream' };
const b64 = (s: string) => Buffer.from(s).toString('base64');
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

describe('tus 1.0 at /api/tus/', () => {
  let t: TestApp;
  let app: AppInstance;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let bob: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK), DFS_PUBLIC_URL: 'https://drive.example' });
    app = t.app;
    alice = await t.user('alice');
    bob = await t.user('bob');
  });
  afterAll(() => t.close());

  const create = (
    length: number,
    meta: string,
    who = alice,
    extra: Record<string, string> = {},
    payload?: Buffer,
  ) =>
    app.inject({
      method: 'POST',
      url: '/api/tus/',
      headers: { ...who.headers, ...TUS, 'upload-length': String(length), 'upload-metadata': meta, ...extra },
      ...(payload ? { payload } : {}),
    });
  const idOf = (location: string | undefined) => String(location).split('/').pop()!;
  const patch = (id: string, offset: number, body: Buffer, who = alice, extra: Record<string, string> = {}) =>
    app.inject({
      method: 'PATCH',
      url: `/api/tus/${id}`,
      headers: { ...who.headers, ...TUS, ...OCTETS, 'upload-offset': String(offset), ...extra },
      payload: body,
    });
  const head = (id: string, who = alice) =>
    app.inject({ method: 'HEAD', url: `/api/tus/${id}`, headers: { ...who.headers, ...TUS } });

  it('answers discovery without a session, and refuses other protocol versions', async () => {
    const res = await app.inject({ method: 'OPTIONS', url: '/api/tus/' });
    expect(res.statusCode).toBe(204);
    expect(res.headers['tus-version']).toBe('1.0.0');
    expect(String(res.headers['tus-extension']).split(',')).toEqual(
      expect.arrayContaining(['creation', 'creation-with-upload', 'termination', 'expiration', 'checksum']),
    );
    expect(res.headers['tus-checksum-algorithm']).toBe('sha1');
    const old = await app.inject({
      method: 'POST',
      url: '/api/tus/',
      headers: { ...alice.headers, 'tus-resumable': '0.2.2', 'upload-length': '1' },
    });
    expect(old.statusCode).toBe(412);
    expect(old.headers['tus-version']).toBe('1.0.0');
    expect(
      (await app.inject({ method: 'POST', url: '/api/tus/', headers: { ...TUS, 'upload-length': '1' } }))
        .statusCode,
    ).toBe(401);
  });

  it('takes a file in PATCHes that end anywhere, and it becomes a file like any other', async () => {
    const folder = (
      await app.inject({
        method: 'POST',
        url: '/api/folders',
        headers: alice.headers,
        payload: { name: 'tus-in' },
      })
    ).json().file;
    const data = random(3 * CHUNK + 100);
    const made = await create(data.length, `filename ${b64('notes 2026.bin')},parentId ${b64(folder.id)}`);
    expect(made.statusCode).toBe(201);
    expect(made.headers.location).toMatch(/^https:\/\/drive\.example\/api\/tus\/[0-9a-f-]{36}$/);
    expect(made.headers['upload-expires']).toBeTruthy();
    const id = idOf(made.headers.location);
    const h0 = await head(id);
    expect(h0.statusCode).toBe(200);
    expect(h0.headers).toMatchObject({
      'upload-offset': '0',
      'upload-length': String(data.length),
      'cache-control': 'no-store',
    });

    // 1000 bytes (inside chunk 0), then a chunk's worth across the boundary, then the rest.
    let offset = 0;
    for (const end of [1000, 1000 + CHUNK, data.length]) {
      const res = await patch(id, offset, data.subarray(offset, end));
      expect(res.statusCode, res.body).toBe(204);
      expect(Number(res.headers['upload-offset'])).toBe(end);
      offset = end;
      if (end < data.length) expect((await head(id)).headers['upload-offset']).toBe(String(end));
    }
    const listed = (
      await app.inject({ url: `/api/files?parentId=${folder.id}`, headers: alice.headers })
    ).json();
    expect(listed.items).toMatchObject([{ name: 'notes 2026.bin', size: data.length, sha1: sha1(data) }]);
    // Done: asking again changes nothing.
    expect((await head(id)).headers['upload-offset']).toBe(String(data.length));
    // No tail part is left on the node.
    const parts = path.join(t.dataDir, 'nodes', 'local', '.parts');
    expect(existsSync(parts) ? await readdir(parts) : []).toEqual([]);
  });

  it('refuses a wrong offset, a wrong body type, and bytes past the end, keeping the offset', async () => {
    const data = random(CHUNK + 10);
    const id = idOf((await create(data.length, `filename ${b64('strict.bin')}`)).headers.location);
    expect((await patch(id, 0, data.subarray(0, 500))).statusCode).toBe(204);
    const wrong = await patch(id, 0, data.subarray(0, 500));
    expect(wrong.statusCode).toBe(409);
    expect(errorCode(wrong)).toBe('offset_mismatch');
    const type = await app.inject({
      method: 'PATCH',
      url: `/api/tus/${id}`,
      headers: {
        ...alice.headers,
        ...TUS,
        'content-type': 'application/octet-stream',
        'upload-offset': '500',
      },
      payload: data.subarray(500),
    });
    expect(type.statusCode).toBe(415);
    const tooMuch = await patch(id, 500, Buffer.concat([data.subarray(500), Buffer.from('extra')]));
    expect(tooMuch.statusCode).toBe(413);
    // The bytes that fitted were kept: the client resumes from there.
    const at = Number((await head(id)).headers['upload-offset']);
    expect(at).toBeGreaterThanOrEqual(500);
    expect((await patch(id, at, data.subarray(at))).statusCode).toBe(204);
    expect(
      (await app.inject({ url: '/api/files?q=strict.bin', headers: alice.headers })).json().items[0].sha1,
    ).toBe(sha1(data));
    // Someone else's upload is not there for them.
    expect((await head(id, bob)).statusCode).toBe(404);
  });

  it('checks Upload-Checksum (sha1) and keeps nothing of a body that fails it', async () => {
    const data = random(2 * CHUNK);
    const id = idOf((await create(data.length, `filename ${b64('summed.bin')}`)).headers.location);
    const first = data.subarray(0, CHUNK + 7);
    const bad = await patch(id, 0, first, alice, {
      'upload-checksum': `sha1 ${createHash('sha1').update('other').digest('base64')}`,
    });
    expect(bad.statusCode).toBe(460);
    expect(errorCode(bad)).toBe('checksum_failed');
    expect((await head(id)).headers['upload-offset']).toBe('0');
    const good = await patch(id, 0, first, alice, {
      'upload-checksum': `sha1 ${createHash('sha1').update(first).digest('base64')}`,
    });
    expect(good.statusCode).toBe(204);
    expect(good.headers['upload-offset']).toBe(String(first.length));
    expect(
      (await patch(id, first.length, data.subarray(first.length), alice, { 'upload-checksum': 'md5 abc' }))
        .statusCode,
    ).toBe(400);
  });

  it('creates with the upload in one request, dedupes against the JSON API, and terminates', async () => {
    const data = random(5000);
    const native = await uploader(t, bob.headers).upload(data, 'from-api.bin');
    const made = await create(data.length, `filename ${b64('from-tus.bin')}`, alice, OCTETS, data);
    expect(made.statusCode).toBe(201);
    expect(made.headers['upload-offset']).toBe(String(data.length));
    const file = (await app.inject({ url: '/api/files?q=from-tus', headers: alice.headers })).json().items[0];
    expect(file.sha1).toBe(native.sha1);
    // One content row for the bytes, whichever protocol brought them.
    expect(await app.services.db('contents').where({ sha1: native.sha1 })).toHaveLength(1);

    const id = idOf((await create(CHUNK * 2, `filename ${b64('dropped.bin')}`)).headers.location);
    await patch(id, 0, random(CHUNK + 3));
    const del = await app.inject({
      method: 'DELETE',
      url: `/api/tus/${id}`,
      headers: { ...alice.headers, ...TUS },
    });
    expect(del.statusCode).toBe(204);
    expect((await head(id)).statusCode).toBe(404);
    expect(await app.services.db('uploads').where({ id })).toEqual([]);
  });

  it('needs a filename, and refuses a deferred length', async () => {
    expect((await create(10, `other ${b64('x')}`)).statusCode).toBe(400);
    expect((await create(10, 'filename !!notbase64')).statusCode).toBe(400);
    const deferred = await app.inject({
      method: 'POST',
      url: '/api/tus/',
      headers: {
        ...alice.headers,
        ...TUS,
        'upload-defer-length': '1',
        'upload-metadata': `filename ${b64('x')}`,
      },
    });
    expect(deferred.statusCode).toBe(400);
  });

  it('lets one of two PATCHes racing at an offset win; the loser gets 409 and the upload goes on', async () => {
    for (let round = 0; round < 4; round++) {
      const size = 2 * CHUNK + 50;
      // Two clients with different bytes for the same upload, one crossing a chunk boundary.
      const a = random(size);
      const b = random(size);
      const id = idOf((await create(size, `filename ${b64(`race ${round}.bin`)}`)).headers.location);
      const [ra, rb] = await Promise.all([
        patch(id, 0, a.subarray(0, round % 2 === 0 ? CHUNK + 10 : 100)),
        patch(id, 0, b.subarray(0, round % 2 === 0 ? 100 : CHUNK + 10)),
      ]);
      const statuses = [ra.statusCode, rb.statusCode].sort();
      expect(statuses, `${ra.body} ${rb.body}`).toEqual([204, 409]);
      const winner = ra.statusCode === 204 ? a : b;
      const at = Number((await head(id)).headers['upload-offset']);
      expect(at).toBe(Number((ra.statusCode === 204 ? ra : rb).headers['upload-offset']));
      // The winner's offset is usable: the rest of its bytes complete the file.
      const rest = await patch(id, at, winner.subarray(at));
      expect(rest.statusCode, rest.body).toBe(204);
      const file = (
        await app.inject({
          url: `/api/files?q=${encodeURIComponent(`race ${round}.bin`)}`,
          headers: alice.headers,
        })
      ).json().items[0];
      expect(file.sha1).toBe(sha1(winner));
    }
  });

  it('resumes after the app restarts: the offset and the bytes of an unfinished chunk survive', async () => {
    const data = random(2 * CHUNK + 333);
    const id = idOf((await create(data.length, `filename ${b64('restart.bin')}`)).headers.location);
    const cut = CHUNK + 12_345;
    expect((await patch(id, 0, data.subarray(0, cut))).statusCode).toBe(204);
    await app.close();
    app = await buildApp(t.config, { logger: { level: 'silent' } });
    const h = await head(id);
    expect(h.headers['upload-offset']).toBe(String(cut));
    const rest = await patch(id, cut, data.subarray(cut));
    expect(rest.statusCode, rest.body).toBe(204);
    const file = (await app.inject({ url: '/api/files?q=restart.bin', headers: alice.headers })).json()
      .items[0];
    expect(file).toMatchObject({ size: data.length, sha1: sha1(data) });
    await app.close();
  });
});
