import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WalSync } from '../../src/db/wal-sync.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { random, sha1 } from '../support/bytes.ts';
import { postForm } from '../support/uploads.ts';

describe('SQLite commits synced before the answer (WalSync)', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    // No heartbeat during the file: its write to `nodes` would land among a request's statements.
    t = await startTestApp({ DFS_HEARTBEAT_SECONDS: '3600' });
    alice = await t.user('alice');
  });
  afterAll(() => t.close());

  it('syncs the WAL before a write is answered, not before a read', async () => {
    const wal = t.app.services.walSync!;
    expect(wal).toBeInstanceOf(WalSync);
    const before = wal.syncs;
    const made = await t.app.inject({
      method: 'POST',
      url: '/api/folders',
      headers: alice.headers,
      payload: { name: 'synced' },
    });
    expect(made.statusCode).toBe(201);
    expect(wal.syncs).toBe(before + 1);
    expect((await t.app.inject({ url: '/api/files', headers: alice.headers })).statusCode).toBe(200);
    expect(wal.syncs).toBe(before + 1);
  });

  it('lets requests that finish together share a sync, and never count on one that began before them', async () => {
    const wal = t.app.services.walSync!;
    const before = wal.syncs;
    // One running, three arriving meanwhile: they wait for one more, not three, and not none.
    const first = wal.sync();
    const later = [wal.sync(), wal.sync(), wal.sync()];
    await Promise.all([first, ...later]);
    expect(wal.syncs).toBe(before + 2);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t.app.inject({
          method: 'POST',
          url: '/api/folders',
          headers: alice.headers,
          payload: { name: `f${i}` },
        }),
      ),
    );
    expect(results.every((r) => r.statusCode === 201)).toBe(true);
    expect(wal.syncs - before - 2).toBeGreaterThanOrEqual(1);
    expect(wal.syncs - before - 2).toBeLessThanOrEqual(20);
  });

  /**
   * The statements of the many-small-files path, where the app's thread is the limit: each costs
   * about a tenth of a millisecond there (knex building and compiling it, the driver running it)
   * before SQLite does any work, so one added to every upload shows in files/s. A budget that
   * fails lists the statements: a change that needs one more says so here.
   */
  const statementsOf = async (request: () => Promise<{ statusCode: number; body: string }>) => {
    const sql: string[] = [];
    const record = (query: { sql: string }) => sql.push(query.sql);
    t.app.services.db.on('query', record);
    try {
      const res = await request();
      return { res, sql, listed: sql.map((s, i) => `${i + 1}. ${s}`).join('\n') };
    } finally {
      t.app.services.db.off('query', record);
    }
  };

  it("answers a signed-in request after one statement of its own (the session and its user's checks)", async () => {
    const { res, sql, listed } = await statementsOf(() =>
      t.app.inject({ url: '/api/no-such-route', headers: alice.headers }),
    );
    expect(res.statusCode).toBe(404);
    expect(sql.length, listed).toBe(1);
  });

  it('stores a small file sent in one request in at most 18 statements, two transactions and one sync', async () => {
    const wal = t.app.services.walSync!;
    const before = wal.syncs;
    const data = random(100_000);
    const { res, sql, listed } = await statementsOf(() =>
      postForm(t, alice.headers, 'small.bin', data, undefined, { sha1: sha1(data) }),
    );
    expect(res.statusCode, res.body).toBe(201);
    expect(sql.length, listed).toBeLessThanOrEqual(18);
    expect(sql.filter((s) => /^begin/i.test(s.trim())).length, listed).toBeLessThanOrEqual(2);
    expect(wal.syncs).toBe(before + 1);
  });
});
