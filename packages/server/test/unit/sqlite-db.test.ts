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

  it('syncs every commit to disk (an acknowledged upload survives a power cut)', async () => {
    // 2 = FULL: the WAL is fsynced at each commit. NORMAL (1) may lose the last commits.
    expect(await db.raw('pragma synchronous')).toEqual([{ synchronous: 2 }]);
    expect(await db.raw('pragma journal_mode')).toEqual([{ journal_mode: 'wal' }]);
    expect(await db.raw('pragma foreign_keys')).toEqual([{ foreign_keys: 1 }]);
  });
});
