import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WalSync } from '../../src/db/wal-sync.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

describe('SQLite commits synced before the answer (WalSync)', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    t = await startTestApp();
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
});
