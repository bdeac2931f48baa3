import { createHash, randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from '@dfs/cluster/mariadb';
import type { Knex } from 'knex';
import { inject } from 'vitest';
import { createDb } from '../../src/db/knex.ts';
import { migrationSource } from '../../src/db/migrations.ts';

/**
 * A database URL of the kind DFS_DB_URL takes, fresh for the caller: on the `mariadb` project a
 * new database on the shared server, otherwise a new SQLite file. Call `drop()` in `afterAll`.
 */
export async function testDatabaseUrl(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  if (process.env.DFS_TEST_DB === 'mysql') {
    const base = inject('mariadbUrl');
    return createTestDatabase(base, options.migrated ? await migratedTemplate(base) : undefined);
  }
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

let template: Promise<{ name: string; copyRowsOf: string[] }> | undefined;

/**
 * A database with every migration run, made once per MariaDB server and test process (named by
 * the migrations, so every worker shares it; a lock keeps two from making it at once): a test
 * app's database starts as its copy instead of running some sixty DDL statements again.
 */
function migratedTemplate(baseUrl: string): Promise<{ name: string; copyRowsOf: string[] }> {
  template ??= (async () => {
    const names = (await migrationSource.getMigrations([])).map((m) => migrationSource.getMigrationName(m));
    const name = `dfs_template_${createHash('sha1').update(names.join('\n')).digest('hex').slice(0, 12)}`;
    const url = new URL(baseUrl);
    url.pathname = '/mysql';
    const admin = createDb(url.toString());
    try {
      await admin.raw('SELECT GET_LOCK(?, 120)', [name]);
      try {
        const exists = await admin.raw('SELECT 1 FROM information_schema.schemata WHERE schema_name = ?', [
          name,
        ]);
        if ((exists[0] as unknown[]).length === 0) {
          await admin.raw(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
          url.pathname = `/${name}`;
          const db = createDb(url.toString());
          try {
            await db.migrate.latest({ migrationSource });
          } finally {
            await db.destroy();
          }
        }
      } finally {
        await admin.raw('SELECT RELEASE_LOCK(?)', [name]);
      }
    } finally {
      await admin.destroy();
    }
    return { name, copyRowsOf: ['knex_migrations', 'knex_migrations_lock'] };
  })();
  return template;
}
