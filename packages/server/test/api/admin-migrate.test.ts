import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminUsageError } from '../../src/admin/command.ts';
import type { AdminIo } from '../../src/admin/commands/io.ts';
import { migrate as migrateCommand } from '../../src/admin/commands/migrate.ts';
import { createDb, type Db, migrate } from '../../src/db/knex.ts';
import { knownMigrations, migrationStatus } from '../../src/services/operations/migrations.ts';
import { testDatabaseUrl } from '../support/db.ts';
import { loadReleaseDump } from '../support/upgrade-fixture.ts';

/** `dfs admin migrate [--dry-run]` on the previous release's database (0.3.0), and on an empty one. */
let dataDir: string;
const dropped: Array<() => Promise<void>> = [];
const open: Db[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'dfs-admin-migrate-'));
});

afterAll(async () => {
  await Promise.all(open.map((db) => db.destroy()));
  for (const drop of dropped) await drop();
  await rm(dataDir, { recursive: true, force: true });
});

async function freshDatabase(): Promise<{ url: string; db: Db }> {
  const database = await testDatabaseUrl();
  dropped.push(database.drop);
  const db = createDb(database.url);
  open.push(db);
  // An empty database, as a database server or an opened SQLite file has it.
  await db.raw('SELECT 1');
  return { url: database.url, db };
}

async function run(url: string, args: string[]) {
  let out = '';
  let err = '';
  const io: AdminIo = {
    env: { DFS_DB_URL: url, DFS_DATA_DIR: dataDir },
    out: (text) => {
      out += text;
    },
    err: (text) => {
      err += text;
    },
  };
  const code = await migrateCommand(args, io);
  return { code, out, err };
}

/** Tables, columns and indexes as the database describes them. */
async function schemaOf(db: Db): Promise<unknown> {
  if (db.client.config.client === 'mysql2') {
    const [columns] = await db.raw(
      'SELECT table_name, column_name, column_type, is_nullable FROM information_schema.columns ' +
        'WHERE table_schema = DATABASE() ORDER BY table_name, column_name',
    );
    const [indexes] = await db.raw(
      'SELECT table_name, index_name, column_name, seq_in_index FROM information_schema.statistics ' +
        'WHERE table_schema = DATABASE() ORDER BY table_name, index_name, seq_in_index',
    );
    return { columns, indexes };
  }
  return db.raw("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name");
}

describe('dfs admin migrate', () => {
  it('lists the pending migrations in order with --dry-run and changes nothing, runs them, and waits out the lock', async () => {
    const { url, db } = await freshDatabase();
    await loadReleaseDump(url, path.join(dataDir, 'nodes', 'local'));
    const known = await knownMigrations();
    const expected = known.slice(known.indexOf('036_content_roots') + 1);
    expect(expected.length).toBeGreaterThan(0);
    const schema = await schemaOf(db);

    const dry = await run(url, ['--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.out).toContain(
      `pending: ${expected.length}, in this order:\n${expected.map((n) => `  ${n}\n`).join('')}`,
    );
    expect(dry.out).toContain('dry run: nothing was changed');
    expect((await migrationStatus(db)).pending).toEqual(expected);
    expect(await schemaOf(db)).toEqual(schema);

    const real = await run(url, []);
    expect(real.code).toBe(0);
    expect(real.err.split('\n').filter((line) => line.endsWith(' …'))).toEqual(
      expected.map((name, i) => `[${i + 1}/${expected.length}] ${name} …`),
    );
    expect(real.out).toContain(`ran ${expected.length} migration(s)`);
    expect((await migrationStatus(db)).pending).toEqual([]);

    const again = await run(url, ['--dry-run']);
    expect(again.out).toContain('pending: none');

    // knex's lock held (an instance migrating, or one that died doing it): a start waits for it.
    await db('knex_migrations_lock').update({ is_locked: 1 });
    const locked = await run(url, ['--dry-run']);
    expect(locked.out).toContain('note: the migration lock is held');
    let waited = false;
    const starting = migrate(db, { pollMs: 50 }).then(() => {
      waited = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(waited).toBe(false);
    const unlocked = await run(url, ['--unlock']);
    expect(unlocked.out).toContain('migration lock freed');
    await starting;
    await expect(migrate(db, { lockWaitMs: 0 })).resolves.toBeUndefined();
    await db('knex_migrations_lock').update({ is_locked: 1 });
    await expect(migrate(db, { lockWaitMs: 0 })).rejects.toThrow(/dfs admin migrate --unlock/);
    await db('knex_migrations_lock').update({ is_locked: 0 });

    // A newer release's migration: this version does not migrate down, nor run on its schema.
    await db('knex_migrations').insert({
      name: '999_from_the_future',
      batch: 99,
      migration_time: new Date(),
    });
    const newer = await run(url, []);
    expect(newer.code).toBe(1);
    expect(newer.out).toMatch(
      /FAIL: the database has migrations this version does not know .*999_from_the_future/,
    );
    await expect(run(url, ['--dryrun'])).rejects.toBeInstanceOf(AdminUsageError);
  });

  it('creates not even its bookkeeping tables on an empty database with --dry-run', async () => {
    const { url, db } = await freshDatabase();
    const dry = await run(url, ['--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.out).toContain(
      `pending: ${(await knownMigrations()).length}, in this order:\n  001_initial\n`,
    );
    expect(await db.schema.hasTable('knex_migrations')).toBe(false);
  });

  it('makes no SQLite file where there is none with --dry-run', async () => {
    const file = path.join(dataDir, 'none', 'dfs.sqlite');
    const dry = await run(`sqlite://${file}`, ['--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.out).toContain(`database: none yet at ${file}`);
    expect(existsSync(path.dirname(file))).toBe(false);
  });
});
