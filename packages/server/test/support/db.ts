import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from '@dfs/cluster/mariadb';
import type { Knex } from 'knex';
import { inject } from 'vitest';
import { migrationSource } from '../../src/db/migrations.ts';

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

/**
 * Runs the migrations before `name`, leaving `db` as the release before that migration left it
 * (for tests of what a migration does to existing rows), and adds one user of that time.
 */
export async function databaseBefore(db: Knex, name: string): Promise<{ userId: string }> {
  for (;;) {
    const [, pending] = (await db.migrate.list({ migrationSource })) as [unknown, Array<{ name: string }>];
    if (pending[0]?.name === name) break;
    if (pending.length === 0) throw new Error(`${name} is not among the migrations`);
    await db.migrate.up({ migrationSource });
  }
  const userId = randomUUID();
  await db('users').insert({
    id: userId,
    username: 'old',
    password_hash: 'x',
    is_admin: false,
    created_at: 1,
  });
  return { userId };
}
