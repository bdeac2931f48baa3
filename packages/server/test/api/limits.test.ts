import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { chunksOf, proofFor, random, sha1 } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

type User = Awaited<ReturnType<TestApp['user']>>;

/** A `POST /api/files` multipart body with one file. */
function form(name: string, data: Buffer) {
  const boundary = '----dfs-limits-boundary';
  return {
    payload: Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
      data,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  };
}

function helpers(t: TestApp, user: User) {
  return {
    up: uploader(t, user.headers),
    me: async () => (await t.app.inject({ url: '/api/auth/me', headers: user.headers })).json(),
    total: async () => (await t.app.inject({ url: '/api/files?q=.', headers: user.headers })).json().total,
    single: (name: string, data: Buffer) => {
      const { payload, headers } = form(name, data);
      return t.app.inject({
        method: 'POST',
        url: '/api/files',
        payload,
        headers: { ...user.headers, ...headers },
      });
    },
    folder: (name: string) =>
      t.app.inject({ method: 'POST', url: '/api/folders', headers: user.headers, payload: { name } }),
  };
}

/** Part files left on the test app's local node: a refused upload leaves none. */
const stagedDirs = async (t: TestApp) => await readdir(path.join(t.dataDir, 'nodes', 'local', '.parts'));

describe('storage quota', () => {
  const QUOTA = CHUNK * 4;
  let t: TestApp;
  let admin: User;
  let alice: User;
  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK), DFS_DEFAULT_QUOTA_BYTES: String(QUOTA) });
    admin = await t.user('admin');
    alice = await t.user('alice');
  });
  afterAll(() => t.close());

  it('reports usage on /me and counts unfinished uploads by their declared size', async () => {
    const a = helpers(t, alice);
    expect((await a.me()).usage).toEqual({ usedBytes: 0, quotaBytes: QUOTA });
    await a.up.upload(random(CHUNK), 'one.bin');
    expect((await a.me()).usage.usedBytes).toBe(CHUNK);
    const data = random(CHUNK * 2);
    const open = await a.up.create({ name: 'pending.bin', size: data.length, sha1: sha1(data) });
    expect(open.statusCode).toBe(201);
    expect((await a.me()).usage.usedBytes).toBe(CHUNK * 3);
    // Aborting gives the reservation back.
    await a.up.abort(open.json().uploadId);
    expect((await a.me()).usage.usedBytes).toBe(CHUNK);
  });

  it('refuses an upload start past the quota with 413 and the numbers, creating nothing', async () => {
    const a = helpers(t, alice);
    const data = random(CHUNK * 3 + 1);
    const res = await a.up.create({ name: 'big.bin', size: data.length, sha1: sha1(data) });
    expect(res.statusCode).toBe(413);
    expect(errorCode(res)).toBe('quota_exceeded');
    expect(res.json().error).toMatchObject({ usedBytes: CHUNK, quotaBytes: QUOTA });
    expect(res.json().error.message).toMatch(/quota/);
    expect((await a.me()).usage.usedBytes).toBe(CHUNK);
    // Exactly up to the quota is fine.
    const fits = random(CHUNK * 3);
    const file = await a.up.upload(fits, 'fits.bin');
    expect(file.size).toBe(CHUNK * 3);
    expect((await a.me()).usage.usedBytes).toBe(QUOTA);
  });

  it('counts the trash until it is purged', async () => {
    const a = helpers(t, alice);
    const listed = (await t.app.inject({ url: '/api/files?q=fits', headers: alice.headers })).json();
    const id = listed.items[0].id;
    await t.app.inject({ method: 'DELETE', url: `/api/files/${id}`, headers: alice.headers });
    expect((await a.me()).usage.usedBytes).toBe(QUOTA);
    const small = random(10);
    const refused = await a.up.create({ name: 'x.bin', size: small.length, sha1: sha1(small) });
    expect(errorCode(refused)).toBe('quota_exceeded');
    await t.app.inject({ method: 'DELETE', url: `/api/trash/${id}`, headers: alice.headers });
    expect((await a.me()).usage.usedBytes).toBe(CHUNK);
  });

  it('refuses an instant upload (known content) past the quota, adding no file', async () => {
    const a = helpers(t, alice);
    const b = helpers(t, admin);
    const data = random(CHUNK * 3 + 5);
    await b.up.upload(data, 'shared.bin');
    const challenge = await a.up.create({ name: 'mine.bin', size: data.length, sha1: sha1(data) });
    expect(challenge.json().status).toBe('challenge');
    const c = challenge.json().challenge;
    const before = await a.total();
    const res = await a.up.create({
      name: 'mine.bin',
      size: data.length,
      sha1: sha1(data),
      proof: { challengeId: c.id, sha1: proofFor(data, c) },
    });
    expect(res.statusCode).toBe(413);
    expect(errorCode(res)).toBe('quota_exceeded');
    expect(await a.total()).toBe(before);
  });

  it('refuses a one-request upload past the quota, storing nothing', async () => {
    const a = helpers(t, alice);
    const before = await a.total();
    const res = await a.single('form.bin', random(CHUNK * 3 + 1));
    expect(res.statusCode).toBe(413);
    expect(errorCode(res)).toBe('quota_exceeded');
    expect(res.json().error).toMatchObject({ usedBytes: CHUNK, quotaBytes: QUOTA });
    expect(await a.total()).toBe(before);
    expect(await stagedDirs(t)).toEqual([]);
    expect((await a.single('form.bin', random(100))).statusCode).toBe(201);
  });

  it('lets an admin set, lift and reset a user quota', async () => {
    const a = helpers(t, alice);
    const patch = (quotaBytes: number | null) =>
      t.app.inject({
        method: 'PATCH',
        url: `/api/admin/users/${alice.id}`,
        headers: admin.headers,
        payload: { quotaBytes },
      });
    const data = random(CHUNK * 5);
    const big = { name: 'huge.bin', size: data.length, sha1: sha1(data) };

    const raised = await patch(CHUNK * 10);
    expect(raised.statusCode).toBe(200);
    expect(raised.json().user).toMatchObject({
      quotaOverride: CHUNK * 10,
      usage: { quotaBytes: CHUNK * 10, usedBytes: CHUNK + 100 },
    });
    expect((await a.me()).usage.quotaBytes).toBe(CHUNK * 10);
    const ok = await a.up.create(big);
    expect(ok.statusCode).toBe(201);
    await a.up.abort(ok.json().uploadId);

    expect((await patch(0)).json().user.usage.quotaBytes).toBeNull();
    expect((await a.me()).usage.quotaBytes).toBeNull();

    expect((await patch(null)).json().user).toMatchObject({
      quotaOverride: null,
      usage: { quotaBytes: QUOTA },
    });
    expect(errorCode(await a.up.create(big))).toBe('quota_exceeded');

    const bad = await t.app.inject({
      method: 'PATCH',
      url: `/api/admin/users/${alice.id}`,
      headers: admin.headers,
      payload: { quotaBytes: -1 },
    });
    expect(bad.statusCode).toBe(400);
    const missing = await t.app.inject({
      method: 'PATCH',
      url: '/api/admin/users/no-such-user',
      headers: admin.headers,
      payload: { quotaBytes: 1 },
    });
    expect(missing.statusCode).toBe(404);
    const notAdmin = await t.app.inject({
      method: 'PATCH',
      url: `/api/admin/users/${alice.id}`,
      headers: alice.headers,
      payload: { quotaBytes: 0 },
    });
    expect(notAdmin.statusCode).toBe(403);

    const list = (await t.app.inject({ url: '/api/admin/users', headers: admin.headers })).json();
    const row = list.items.find((u: { id: string }) => u.id === alice.id);
    expect(row).toMatchObject({ usage: { usedBytes: CHUNK + 100, quotaBytes: QUOTA } });
    expect(row.entries).toBeGreaterThanOrEqual(2);
  });
});

describe('files per user', () => {
  let t: TestApp;
  let alice: User;
  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK), DFS_MAX_FILES_PER_USER: '3' });
    alice = await t.user('alice');
  });
  afterAll(() => t.close());

  it('counts folders, files, trash and unfinished uploads, and answers 409 too_many_files', async () => {
    const a = helpers(t, alice);
    expect((await a.folder('one')).statusCode).toBe(201);
    const trashed = (await a.folder('two')).json().file;
    await t.app.inject({ method: 'DELETE', url: `/api/files/${trashed.id}`, headers: alice.headers });
    const data = random(CHUNK + 1);
    const open = await a.up.create({ name: 'pending.bin', size: data.length, sha1: sha1(data) });
    expect(open.statusCode).toBe(201);

    const folder = await a.folder('three');
    expect(folder.statusCode).toBe(409);
    expect(errorCode(folder)).toBe('too_many_files');
    expect(folder.json().error).toMatchObject({ entries: 3, maxEntries: 3 });
    const other = random(10);
    expect(errorCode(await a.up.create({ name: 'o.bin', size: 10, sha1: sha1(other) }))).toBe(
      'too_many_files',
    );
    expect(errorCode(await a.single('o.bin', other))).toBe('too_many_files');

    // The open upload was counted already: it may still complete.
    for (const [i, chunk] of chunksOf(data, CHUNK).entries()) await a.up.put(open.json().uploadId, i, chunk);
    expect((await a.up.complete(open.json().uploadId)).statusCode).toBe(201);

    // Purging the trash makes room again.
    await t.app.inject({ method: 'DELETE', url: `/api/trash/${trashed.id}`, headers: alice.headers });
    expect((await a.folder('three')).statusCode).toBe(201);
  });
});

describe('free space on the storage nodes', () => {
  let t: TestApp;
  let alice: User;
  beforeAll(async () => {
    // A reserve no disk has: every upload that would stage bytes is refused.
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK), DFS_MIN_FREE_BYTES: String(2 ** 52) });
    alice = await t.user('alice');
  });
  afterAll(() => t.close());

  it('refuses upload starts and one-request uploads with 507, creating nothing', async () => {
    const a = helpers(t, alice);
    const data = random(CHUNK + 3);
    const res = await a.up.create({ name: 'a.bin', size: data.length, sha1: sha1(data) });
    expect(res.statusCode).toBe(507);
    expect(errorCode(res)).toBe('insufficient_storage');
    expect(res.json().error.message).toMatch(/no room/);
    expect((await a.me()).usage.usedBytes).toBe(0);

    const single = await a.single('b.bin', data);
    expect(single.statusCode).toBe(507);
    expect(errorCode(single)).toBe('insufficient_storage');
    expect(await a.total()).toBe(0);
    expect(await stagedDirs(t)).toEqual([]);
    // Folders store no bytes.
    expect((await a.folder('docs')).statusCode).toBe(201);
  });
});

describe('listing pages', () => {
  const COUNT = 205;
  let t: TestApp;
  let alice: User;
  beforeAll(async () => {
    t = await startTestApp();
    alice = await t.user('alice');
    const a = helpers(t, alice);
    for (let i = 0; i < COUNT; i++) {
      const res = await a.folder(`f${String(i).padStart(3, '0')}`);
      if (res.statusCode !== 201) throw new Error(res.body);
    }
  });
  afterAll(() => t.close());

  const get = (url: string) => t.app.inject({ url, headers: alice.headers });

  it('answers 200 entries when no limit is given, with total counting all', async () => {
    const folder = (await get('/api/files')).json();
    expect(folder.items).toHaveLength(200);
    expect(folder.total).toBe(COUNT);
    const rest = (await get('/api/files?offset=200')).json();
    expect(rest.items.map((f: { name: string }) => f.name)).toEqual(['f200', 'f201', 'f202', 'f203', 'f204']);
    const search = (await get('/api/files?q=f')).json();
    expect(search.items).toHaveLength(200);
    expect(search.total).toBe(COUNT);
  });

  it('refuses a limit above 1000 with 400', async () => {
    expect((await get('/api/files?limit=1000')).json().items).toHaveLength(COUNT);
    for (const url of ['/api/files?limit=1001', '/api/files?q=f&limit=5000', '/api/trash?limit=1001']) {
      const res = await get(url);
      expect(res.statusCode, url).toBe(400);
      expect(errorCode(res)).toBe('bad_request');
    }
  });

  it('pages the trash the same way', async () => {
    const all = (await get('/api/files?limit=1000')).json().items as Array<{ id: string }>;
    for (const f of all) {
      await t.app.inject({ method: 'DELETE', url: `/api/files/${f.id}`, headers: alice.headers });
    }
    const trash = (await get('/api/trash')).json();
    expect(trash.items).toHaveLength(200);
    expect(trash.total).toBe(COUNT);
  });
});
