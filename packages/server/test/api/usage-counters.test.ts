import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/knex.ts';
import { migrationSource } from '../../src/db/migrations.ts';
import { Repositories } from '../../src/repositories/index.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { random, sha1 } from '../support/bytes.ts';
import { databaseBefore, testDatabaseUrl } from '../support/db.ts';
import { postForm, uploader } from '../support/uploads.ts';

type User = Awaited<ReturnType<TestApp['user']>>;

/**
 * The quota's counters on the user's row (bytes of all their entries, how many) against a fresh
 * sum over their rows, after every kind of write that changes what a user holds.
 */
describe('usage counters', () => {
  let t: TestApp;
  let clock = Date.parse('2026-11-01T09:00:00Z');
  let alice: User;
  let bob: User;
  beforeAll(async () => {
    t = await startTestApp({}, { now: () => clock });
    alice = await t.user('alice');
    bob = await t.user('bob');
  });
  afterAll(() => t.close());

  const api = (user: User, method: string, url: string, payload?: object) =>
    t.app.inject({ method: method as 'GET', url, headers: user.headers, ...(payload ? { payload } : {}) });
  const ok = async <T = Record<string, unknown>>(res: Promise<{ statusCode: number; body: string }>) => {
    const r = await res;
    expect(r.statusCode, r.body).toBeLessThan(300);
    return (r.body === '' ? {} : JSON.parse(r.body)) as T;
  };
  const upload = async (user: User, name: string, data: Buffer, parentId?: string, replace = false) => {
    const res = await postForm(
      t,
      user.headers,
      name,
      data,
      parentId,
      replace ? { onConflict: 'replace' } : {},
    );
    expect(res.statusCode, res.body).toBe(201);
    return res.json().file as { id: string };
  };
  const folder = async (user: User, name: string, parentId?: string) =>
    (
      await ok<{ file: { id: string } }>(
        api(user, 'POST', '/api/folders', { name, parentId: parentId ?? null }),
      )
    ).file;
  const usedBytes = async (user: User) =>
    (await ok<{ usage: { usedBytes: number } }>(api(user, 'GET', '/api/auth/me'))).usage.usedBytes;

  /** The counters equal the sums, and the reported usage is the sum plus open reservations. */
  const expectExact = async (user: User, reserved = 0) => {
    const db = t.app.services.db;
    const counters = await db('users').where({ id: user.id }).first('used_bytes', 'entry_count');
    const sums = await db('user_files')
      .where({ user_id: user.id })
      .first(db.raw('COALESCE(SUM(size), 0) as bytes'), db.raw('COUNT(*) as n'));
    expect({ bytes: Number(counters.used_bytes), entries: Number(counters.entry_count) }).toEqual({
      bytes: Number(sums.bytes),
      entries: Number(sums.n),
    });
    expect(await usedBytes(user)).toBe(Number(sums.bytes) + reserved);
    return Number(sums.bytes);
  };

  it('follow uploads, replacements, versions, copies, the trash and a restore to the past', async () => {
    const docs = await folder(alice, 'Docs');
    const sub = await folder(alice, 'sub', docs.id);
    await expectExact(alice);
    const a = await upload(alice, 'a.bin', random(300), docs.id);
    await upload(alice, 'b.bin', random(200), sub.id);
    expect(await expectExact(alice)).toBe(500);

    // A reservation counts while the upload is open, and goes with it.
    const data = random(1000);
    const up = uploader(t, alice.headers);
    const opened = await ok<{ uploadId: string }>(
      up.create({ name: 'c.bin', size: data.length, sha1: sha1(data) }),
    );
    await expectExact(alice, 1000);
    expect((await up.abort(opened.uploadId)).statusCode).toBe(204);
    await expectExact(alice);

    // A replacement: the file's size changes, the old content is kept as a version.
    clock += 60_000;
    const at = clock;
    clock += 60_000;
    expect((await upload(alice, 'a.bin', random(700), docs.id, true)).id).toBe(a.id);
    expect(await expectExact(alice)).toBe(900);
    const versions = (
      await ok<{ items: Array<{ id: string; current: boolean }> }>(
        api(alice, 'GET', `/api/files/${a.id}/versions`),
      )
    ).items;
    const old = versions.find((v) => !v.current)!;
    // Restoring the version makes it the file's content again (and keeps the 700 as a version).
    await ok(api(alice, 'POST', `/api/files/${a.id}/versions/${old.id}/restore`));
    expect(await expectExact(alice)).toBe(500);
    const again = (
      await ok<{ items: Array<{ id: string; current: boolean }> }>(
        api(alice, 'GET', `/api/files/${a.id}/versions`),
      )
    ).items.find((v) => !v.current)!;
    await ok(api(alice, 'DELETE', `/api/files/${a.id}/versions/${again.id}`));
    await expectExact(alice);

    // A copy through WebDAV: every entry of the folder, once more.
    const secret = await t.appPassword(alice.headers);
    const basic = `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}`;
    const copied = await t.app.inject({
      method: 'COPY' as 'GET',
      url: '/dav/Docs/',
      headers: { authorization: basic, destination: '/dav/Docs2/', depth: 'infinity' },
    });
    expect(copied.statusCode, copied.body).toBe(201);
    expect(await expectExact(alice)).toBe(1000);
    // A replacement through WebDAV.
    const put = await t.app.inject({
      method: 'PUT',
      url: '/dav/Docs2/a.bin',
      headers: { authorization: basic },
      payload: random(50),
    });
    expect(put.statusCode, put.body).toBe(204);
    expect(await expectExact(alice)).toBe(750);

    // The trash still counts; restoring changes nothing, purging takes the subtree off.
    await ok(api(alice, 'DELETE', `/api/files/${sub.id}`));
    expect(await expectExact(alice)).toBe(750);
    await ok(api(alice, 'POST', `/api/trash/${sub.id}/restore`));
    await ok(api(alice, 'DELETE', `/api/files/${sub.id}`));
    await ok(api(alice, 'DELETE', `/api/trash/${sub.id}`));
    expect(await expectExact(alice)).toBe(550);

    // A folder put back as it was: contents replaced set-wise, purged entries made again.
    await upload(alice, 'a.bin', random(111), docs.id, true);
    clock += 60_000;
    await ok(api(alice, 'POST', '/api/restore', { folderId: docs.id, at: new Date(at).toISOString() }));
    await expectExact(alice);

    // Emptying the trash.
    await ok(api(alice, 'DELETE', '/api/trash'));
    await expectExact(alice);
  });

  it("charge the owner for an editor's upload into a shared folder, not the editor", async () => {
    const team = await folder(bob, 'Team');
    await ok(api(bob, 'POST', `/api/files/${team.id}/members`, { username: 'alice', role: 'editor' }));
    const aliceBefore = await expectExact(alice);
    const bobBefore = await expectExact(bob);
    await upload(alice, 'from-alice.bin', random(321), team.id);
    expect(await expectExact(bob)).toBe(bobBefore + 321);
    expect(await expectExact(alice)).toBe(aliceBefore);
  });
});

describe('the migrations of a million files', () => {
  it("sum each user's entries once and index the names already there", async () => {
    const database = await testDatabaseUrl();
    const db = createDb(database.url);
    try {
      const { userId } = await databaseBefore(db, '033_usage_counters');
      // Past one statement of rows (the name pieces are written 400 rows a statement).
      const ids = Array.from({ length: 1100 }, (_, i) => `entry-${i}`);
      for (let i = 0; i < ids.length; i += 400)
        await db('user_files').insert(
          ids.slice(i, i + 400).map((id, j) => ({
            id,
            user_id: userId,
            parent_id: '',
            kind: 'file',
            name: `Old Name ${id}`,
            live_name: (i + j) % 2 === 0 ? `Old Name ${id}` : null,
            size: 2,
            status: (i + j) % 2 === 0 ? 'active' : 'trashed',
            created_at: 1,
            updated_at: 1,
          })),
        );
      await db.migrate.latest({ migrationSource });
      const counters = await db('users').where({ id: userId }).first('used_bytes', 'entry_count');
      expect([Number(counters.used_bytes), Number(counters.entry_count)]).toEqual([2200, 1100]);
      const found = await new Repositories(db).files.list(
        userId,
        { query: 'name entry-109' },
        { sort: 'name', order: 'asc', limit: 100, offset: 0 },
      );
      // The live ones among entry-109 and entry-1090…1099 (the even ones).
      expect(found.items.map((r) => r.id).sort()).toEqual([
        'entry-1090',
        'entry-1092',
        'entry-1094',
        'entry-1096',
        'entry-1098',
      ]);
    } finally {
      await db.destroy();
      await database.drop();
    }
  });
});
