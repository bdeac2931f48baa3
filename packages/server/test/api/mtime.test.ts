import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { proofFor, random } from '../support/bytes.ts';
import { CHUNK, multipartForm, uploader } from '../support/uploads.ts';

const run = promisify(execFile);
const b64 = (s: string) => Buffer.from(s).toString('base64');
const TUS = { 'tus-resumable': '1.0.0' };

/** A time with milliseconds, well in the past: what a real source file has. */
const WHEN = '2021-03-04T05:06:07.891Z';

describe('modification times (mtime)', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let basic: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) });
    alice = await t.user('alice');
    const secret = await t.appPassword(alice.headers, 'dav');
    basic = { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}` };
  });
  afterAll(() => t.close());

  const getFile = async (id: string) =>
    (await t.app.inject({ url: `/api/files/${id}`, headers: alice.headers })).json().file;
  const byName = async (name: string) => {
    const res = await t.app.inject({
      url: `/api/files?q=${encodeURIComponent(name)}`,
      headers: alice.headers,
    });
    return res.json().items.filter((f: { name: string }) => f.name === name);
  };
  const form = (name: string, data: Buffer, fields: Record<string, string>) => {
    const f = multipartForm(name, data, undefined, fields);
    return t.app.inject({
      method: 'POST',
      url: '/api/files',
      payload: f.payload,
      headers: { ...f.headers, ...alice.headers },
    });
  };
  const propfindLastModified = async (url: string) => {
    const res = await t.app.inject({
      method: 'PROPFIND' as 'GET',
      url,
      headers: { ...basic, depth: '0' },
    });
    expect(res.statusCode).toBe(207);
    return /<D:getlastmodified>([^<]*)</.exec(res.body)?.[1];
  };

  it('a chunked upload keeps the mtime it was created with, and GET answers it', async () => {
    const data = random(CHUNK + 10);
    const up = uploader(t, alice.headers);
    const created = await up.create({ name: 'chunked.bin', size: data.length, mtime: WHEN });
    expect(created.statusCode).toBe(201);
    const { uploadId } = created.json();
    expect((await up.put(uploadId, 0, data.subarray(0, CHUNK))).statusCode).toBe(204);
    expect((await up.put(uploadId, 1, data.subarray(CHUNK))).statusCode).toBe(204);
    const sha1 = createHash('sha1').update(data).digest('hex');
    const done = await t.app.inject({
      method: 'POST',
      url: `/api/uploads/${uploadId}/complete`,
      headers: alice.headers,
      payload: { sha1 },
    });
    expect(done.statusCode).toBe(201);
    expect(done.json().file.mtime).toBe(WHEN);
    expect((await getFile(done.json().file.id)).mtime).toBe(WHEN);
  });

  it('an instant upload (known content, proven) takes the mtime of its own request', async () => {
    const data = random(3000);
    const up = uploader(t, alice.headers);
    await up.upload(data, 'first.bin');
    const sha1 = createHash('sha1').update(data).digest('hex');
    const challenge = (await up.create({ name: 'second.bin', size: data.length, sha1 })).json();
    expect(challenge.status).toBe('challenge');
    const instant = await up.create({
      name: 'second.bin',
      size: data.length,
      sha1,
      mtime: '2020-01-02T03:04:05.000+02:00',
      proof: { challengeId: challenge.challenge.id, sha1: proofFor(data, challenge.challenge) },
    });
    expect(instant.json()).toMatchObject({ status: 'instant', file: { mtime: '2020-01-02T01:04:05.000Z' } });
  });

  it('without an mtime, a file has the time it was stored (= updatedAt), and a rename keeps it', async () => {
    const file = (await uploader(t, alice.headers).upload(random(100), 'plain.bin')) as {
      id: string;
      mtime: string;
      updatedAt: string;
    };
    expect(file.mtime).toBe(file.updatedAt);
    const folder = await t.app.inject({
      method: 'POST',
      url: '/api/folders',
      headers: alice.headers,
      payload: { name: 'Dir' },
    });
    expect(folder.json().file.mtime).toBe(folder.json().file.updatedAt);
    await new Promise((r) => setTimeout(r, 5));
    const renamed = await t.app.inject({
      method: 'PATCH',
      url: `/api/files/${file.id}`,
      headers: alice.headers,
      payload: { name: 'plain renamed.bin', parentId: folder.json().file.id },
    });
    expect(renamed.statusCode).toBe(200);
    expect(renamed.json().file.updatedAt).not.toBe(file.updatedAt);
    expect(renamed.json().file.mtime).toBe(file.mtime);
  });

  it('a folder sorts by mtime ("Modified"): folders by their updatedAt first, then files by mtime', async () => {
    const folder = (
      await t.app.inject({
        method: 'POST',
        url: '/api/folders',
        headers: alice.headers,
        payload: { name: 'Sorted' },
      })
    ).json().file;
    await t.app.inject({
      method: 'POST',
      url: '/api/folders',
      headers: alice.headers,
      payload: { name: 'sub', parentId: folder.id },
    });
    // Uploaded in one order, modified in another.
    for (const [name, mtime] of [
      ['b.txt', '2022-01-01T00:00:00.000Z'],
      ['c.txt', '2018-01-01T00:00:00.000Z'],
      ['a.txt', '2020-01-01T00:00:00.000Z'],
    ] as const) {
      const f = multipartForm(name, random(10), folder.id, { mtime });
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/files',
        payload: f.payload,
        headers: { ...f.headers, ...alice.headers },
      });
      expect(res.statusCode).toBe(201);
    }
    const names = async (query: string) =>
      (await t.app.inject({ url: `/api/files?${query}`, headers: alice.headers }))
        .json()
        .items.map((f: { name: string }) => f.name);
    expect(await names(`parentId=${folder.id}&sort=mtime`)).toEqual(['sub', 'c.txt', 'a.txt', 'b.txt']);
    expect(await names(`parentId=${folder.id}&sort=mtime&order=desc`)).toEqual([
      'sub',
      'b.txt',
      'a.txt',
      'c.txt',
    ]);
    expect(await names(`parentId=${folder.id}&sort=mtime&limit=2&offset=1`)).toEqual(['c.txt', 'a.txt']);
    expect(await names('q=.txt&sort=mtime').then((n) => n.filter((x: string) => x.length === 5))).toEqual([
      'c.txt',
      'a.txt',
      'b.txt',
    ]);
  });

  it('refuses times that are not ISO 8601, before 1970 or more than a day ahead, storing nothing', async () => {
    const up = uploader(t, alice.headers);
    const ahead = new Date(Date.now() + 2 * 24 * 3600_000).toISOString();
    for (const mtime of ['yesterday', '1700000000', '1969-12-31T23:59:59Z', ahead, '2021-03-04']) {
      const res = await up.create({ name: 'bad.bin', size: 10, mtime });
      expect(res.statusCode, mtime).toBe(400);
      const posted = await form('bad-form.bin', random(10), { mtime });
      expect(posted.statusCode, mtime).toBe(400);
      expect(errorCode(posted)).toBe('bad_request');
    }
    expect(await byName('bad.bin')).toEqual([]);
    expect(await byName('bad-form.bin')).toEqual([]);
    // A day ahead is within reach (clocks drift).
    const soon = new Date(Date.now() + 3600_000).toISOString();
    expect((await form('soon.bin', random(10), { mtime: soon })).json().file.mtime).toBe(soon);
  });

  it('POST /api/files takes an mtime field, before or after the file part', async () => {
    const before = await form('form-before.bin', random(200), { mtime: WHEN });
    expect(before.statusCode).toBe(201);
    expect(before.json().file.mtime).toBe(WHEN);

    // `curl -F file=@x -F mtime=…`: the field follows the file.
    const boundary = '----mtime-after';
    const payload = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="form-after.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
      random(300),
      Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="mtime"\r\n\r\n${WHEN}\r\n`),
      Buffer.from(`--${boundary}--\r\n`),
    ]);
    const after = await t.app.inject({
      method: 'POST',
      url: '/api/files',
      payload,
      headers: { ...alice.headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
    });
    expect(after.statusCode).toBe(201);
    expect(after.json().file.mtime).toBe(WHEN);
  });

  it('POST /api/files/batch takes an mtime per file; a bad one fails the batch with its index', async () => {
    const boundary = '----mtime-batch';
    const part = (name: string, value: string) =>
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`);
    const file = (name: string) =>
      Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
        ),
        random(50),
        Buffer.from('\r\n'),
      ]);
    const send = (...pieces: Buffer[]) =>
      t.app.inject({
        method: 'POST',
        url: '/api/files/batch',
        payload: Buffer.concat([...pieces, Buffer.from(`--${boundary}--\r\n`)]),
        headers: { ...alice.headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
      });
    const ok = await send(part('mtime', WHEN), file('batch-a.bin'), file('batch-b.bin'));
    expect(ok.statusCode).toBe(201);
    const [a, b] = ok.json().files;
    expect(a.mtime).toBe(WHEN);
    expect(b.mtime).toBe(b.updatedAt);

    const bad = await send(file('batch-c.bin'), part('mtime', 'never'), file('batch-d.bin'));
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.index).toBe(1);
    expect(await byName('batch-c.bin')).toEqual([]);
  });

  it('tus metadata mtime, in seconds or ISO 8601', async () => {
    const create = (name: string, mtime: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/tus/',
        headers: {
          ...alice.headers,
          ...TUS,
          'content-type': 'application/offset+octet-stream',
          'upload-length': '5',
          'upload-metadata': `filename ${b64(name)},mtime ${b64(mtime)}`,
        },
        payload: Buffer.from('hello'),
      });
    expect((await create('tus-seconds.txt', '1600000000.25')).statusCode).toBe(201);
    expect((await byName('tus-seconds.txt'))[0].mtime).toBe('2020-09-13T12:26:40.250Z');
    expect((await create('tus-iso.txt', WHEN)).statusCode).toBe(201);
    expect((await byName('tus-iso.txt'))[0].mtime).toBe(WHEN);
    const bad = await create('tus-bad.txt', '-5');
    expect(bad.statusCode).toBe(400);
    expect(await byName('tus-bad.txt')).toEqual([]);
  });

  it('WebDAV PUT with X-OC-Mtime: accepted, shown as getlastmodified; a COPY and a MOVE keep it', async () => {
    const put = (url: string, extra: Record<string, string>) =>
      t.app.inject({ method: 'PUT', url, headers: { ...basic, ...extra }, payload: random(64) });
    const first = await put('/dav/dav-a.txt', { 'x-oc-mtime': '1700000000' });
    expect(first.statusCode).toBe(201);
    expect(first.headers['x-oc-mtime']).toBe('accepted');
    expect(await propfindLastModified('/dav/dav-a.txt')).toBe('Tue, 14 Nov 2023 22:13:20 GMT');
    expect((await byName('dav-a.txt'))[0].mtime).toBe('2023-11-14T22:13:20.000Z');

    // New content in place: the new time, milliseconds kept.
    const replaced = await put('/dav/dav-a.txt', { 'x-oc-mtime': '1700000100.5' });
    expect(replaced.statusCode).toBe(204);
    expect(replaced.headers['x-oc-mtime']).toBe('accepted');
    expect((await byName('dav-a.txt'))[0].mtime).toBe('2023-11-14T22:15:00.500Z');

    const copy = await t.app.inject({
      method: 'COPY' as 'GET',
      url: '/dav/dav-a.txt',
      headers: { ...basic, destination: '/dav/dav-b.txt' },
    });
    expect(copy.statusCode).toBe(201);
    expect((await byName('dav-b.txt'))[0].mtime).toBe('2023-11-14T22:15:00.500Z');
    const move = await t.app.inject({
      method: 'MOVE' as 'GET',
      url: '/dav/dav-b.txt',
      headers: { ...basic, destination: '/dav/dav-c.txt' },
    });
    expect(move.statusCode).toBe(201);
    expect(await propfindLastModified('/dav/dav-c.txt')).toBe('Tue, 14 Nov 2023 22:15:00 GMT');

    // Without the header there is nothing to accept; the time is the upload's.
    const plain = await put('/dav/dav-d.txt', {});
    expect(plain.statusCode).toBe(201);
    expect(plain.headers['x-oc-mtime']).toBeUndefined();
    const d = (await byName('dav-d.txt'))[0];
    expect(d.mtime).toBe(d.updatedAt);

    for (const bad of ['soon', '-1', '99999999999']) {
      const res = await put('/dav/dav-bad.txt', { 'x-oc-mtime': bad });
      expect(res.statusCode, bad).toBe(400);
    }
    expect(await byName('dav-bad.txt')).toEqual([]);
  });
});

/**
 * Debian's rclone with `vendor = nextcloud` sends X-OC-Mtime on every PUT and cannot set a time
 * afterwards: it compares sizes and times (1 s precision) from PROPFIND, so a second copy of an
 * unchanged tree must send nothing.
 */
describe.skipIf(process.env.DFS_TEST_DB === 'mysql')(
  'rclone (vendor nextcloud) keeps times over /dav/',
  () => {
    let t: TestApp;
    let tmp: string;
    let env: NodeJS.ProcessEnv;
    let puts = 0;

    beforeAll(async () => {
      t = await startTestApp();
      t.app.addHook('onRequest', async (request) => {
        if (request.method === 'PUT' && request.url.startsWith('/dav/')) puts++;
      });
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const port = (t.app.server.address() as AddressInfo).port;
      const alice = await t.user('alice');
      const secret = await t.appPassword(alice.headers, 'rclone');
      tmp = await mkdtemp(path.join(os.tmpdir(), 'dfs-rclone-mtime-'));
      await writeFile(path.join(tmp, 'rclone.conf'), '');
      env = {
        ...process.env,
        RCLONE_CONFIG: path.join(tmp, 'rclone.conf'),
        RCLONE_CONFIG_DFS_TYPE: 'webdav',
        RCLONE_CONFIG_DFS_URL: `http://127.0.0.1:${port}/dav/`,
        RCLONE_CONFIG_DFS_VENDOR: 'nextcloud',
        RCLONE_CONFIG_DFS_USER: 'alice',
        RCLONE_CONFIG_DFS_PASS: (await run('rclone', ['obscure', secret])).stdout.trim(),
      };
    });
    afterAll(async () => {
      await t?.close();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    });

    it("a second copy of an unchanged tree transfers nothing, and the times listed are the sources'", async () => {
      const src = path.join(tmp, 'src');
      const names = ['one.txt', 'sub/two.bin', 'sub/deeper/three é.md'];
      for (const [i, name] of names.entries()) {
        await mkdir(path.dirname(path.join(src, name)), { recursive: true });
        await writeFile(path.join(src, name), random(100 + i * 1000));
        // Old times, so that "now" (the upload's time) would not pass for them.
        const at = new Date(Date.UTC(2019, i, 10, 8, 30, 15));
        await utimes(path.join(src, name), at, at);
      }
      const first = await run('rclone', ['copy', '-v', src, 'dfs:synced'], { env });
      expect(first.stderr.match(/Copied \(new\)/g)).toHaveLength(3);
      expect(puts).toBe(3);

      const listed = (await run('rclone', ['lsl', 'dfs:synced'], { env })).stdout;
      expect(listed).toContain('2019-01-10 08:30:15');
      expect(listed).toContain('2019-03-10 08:30:15');

      const second = await run('rclone', ['copy', '-v', src, 'dfs:synced'], { env });
      expect(second.stderr).not.toContain('Copied');
      expect(puts).toBe(3);

      // A source that changes is sent again (and only it).
      const later = new Date(Date.UTC(2022, 5, 1, 12, 0, 0));
      await writeFile(path.join(src, 'one.txt'), random(150));
      await utimes(path.join(src, 'one.txt'), later, later);
      const third = await run('rclone', ['copy', '-v', src, 'dfs:synced'], { env });
      expect(third.stderr.match(/Copied/g)).toHaveLength(1);
      expect(puts).toBe(4);
    });
  },
);
