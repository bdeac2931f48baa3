import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../../src/db/knex.ts';

describe('the SQLite database the app opens', () => {
  let dir: string;
  let db: Db;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-sqlite-'));
    db = createDb(`sqlite://${path.join(dir, 'dfs.sqlite')}`);
  });
  afterAll(async () => {
    await db.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('commits to the WAL without a sync on the event loop (WalSync syncs before a write is answered)', async () => {
    // 1 = NORMAL: COMMIT writes the WAL to the OS only; db/wal-sync.ts fsyncs it from the thread
    // pool before any write's answer (test/api/wal-sync.test.ts), so nothing acknowledged is lost.
    expect(await db.raw('pragma synchronous')).toEqual([{ synchronous: 1 }]);
    expect(await db.raw('pragma journal_mode')).toEqual([{ journal_mode: 'wal' }]);
    expect(await db.raw('pragma foreign_keys')).toEqual([{ foreign_keys: 1 }]);
  });
});
