import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from '@dfs/cluster/mariadb';
import { inject } from 'vitest';

/**
 * A database URL of the kind DFS_DB_URL takes, fresh for the caller: on the `mariadb` project a
 * new database on the shared server, otherwise a new SQLite file. Call `drop()` in `afterAll`.
 */
export async function testDatabaseUrl(): Promise<TestDatabase> {
  if (process.env.DFS_TEST_DB === 'mysql') return createTestDatabase(inject('mariadbUrl'));
  const dir = path.join(tmpdir(), 'dfs-test-sqlite', randomUUID());
  await mkdir(dir, { recursive: true });
  return {
    url: `sqlite://${path.join(dir, 'dfs.sqlite')}`,
    drop: () => rm(dir, { recursive: true, force: true }),
  };
}
