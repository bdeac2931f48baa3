import { chmod, copyFile, mkdir, readdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { createDb, type Db, dialectOf, migrate, mysqlConnectionOf } from '../../../db/knex.ts';
import { migrationSource } from '../../../db/migrations.ts';
import { type BackupManifest, DUMP_FILE, readManifest, SECRET_FILE, SQLITE_FILE } from './manifest.ts';
import { loadDump } from './mysql-client.ts';

export interface RestoreInstanceOptions {
  dir: string;
  /** SQLite backups: the new data directory (database and secret); MariaDB: where the secret goes. */
  dataDir?: string;
  /** MariaDB backups: the new, empty database. */
  dbUrl?: string;
  progress?: (line: string) => void;
}

export interface RestoreInstanceResult {
  manifest: BackupManifest;
  dbUrl: string;
  dataDir: string | null;
  /** Migrations run after loading: the backup was taken by an older version. */
  migrated: string[];
}

/** Thrown for a target that would mix a restore into something already there. */
export class RestoreRefused extends Error {
  override readonly name = 'RestoreRefused';
}

/**
 * `dfs admin restore <dir> --data-dir … | --db-url …`: a new instance's metadata from a backup,
 * into an empty target only (a restore never merges into a live database). The nodes are not
 * touched: contents are immutable, and the restored app is started on the same nodes.
 */
export async function restoreInstance(options: RestoreInstanceOptions): Promise<RestoreInstanceResult> {
  const progress = options.progress ?? (() => {});
  const manifest = await readManifest(options.dir);
  const dataDir = options.dataDir ? path.resolve(options.dataDir) : null;
  if (dataDir) await assertEmptyDir(dataDir);
  let dbUrl: string;
  if (manifest.db === 'sqlite') {
    if (options.dbUrl)
      throw new RestoreRefused('a SQLite backup restores into a data directory (--data-dir), not --db-url');
    if (!dataDir) throw new RestoreRefused('a SQLite backup needs --data-dir <new directory>');
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const file = path.join(dataDir, 'dfs.sqlite');
    // Copied under another name, then renamed: a crash never leaves half a database in place.
    await copyFile(path.join(options.dir, SQLITE_FILE), `${file}.partial`);
    await chmod(`${file}.partial`, 0o600);
    await rename(`${file}.partial`, file);
    dbUrl = `sqlite://${file}`;
    progress(`database copied to ${file}`);
  } else {
    if (!options.dbUrl || dialectOf(options.dbUrl) !== 'mysql') {
      throw new RestoreRefused(
        'a MariaDB/MySQL backup needs --db-url mysql://user:pass@host:port/<new database>',
      );
    }
    dbUrl = options.dbUrl;
    await prepareEmptyDatabase(dbUrl);
    progress('loading the dump');
    await loadDump(mysqlConnectionOf(dbUrl), path.join(options.dir, DUMP_FILE));
    progress('dump loaded');
    if (dataDir) await mkdir(dataDir, { recursive: true, mode: 0o700 });
  }
  if (dataDir && manifest.secret === 'file') {
    await copyFile(path.join(options.dir, SECRET_FILE), path.join(dataDir, 'secret'));
    await chmod(path.join(dataDir, 'secret'), 0o600);
  }
  const db = createDb(dbUrl);
  try {
    const migrated = await pendingMigrations(db);
    if (migrated.length > 0) progress(`running ${migrated.length} migration(s): ${migrated.join(', ')}`);
    await migrate(db);
    // The snapshot was taken while its own row said `running`; here the backup is complete.
    await db('backups').where({ id: manifest.id }).update({ status: 'complete' });
    return { manifest, dbUrl, dataDir, migrated };
  } finally {
    await db.destroy();
  }
}

async function pendingMigrations(db: Db): Promise<string[]> {
  const [, pending] = (await db.migrate.list({ migrationSource })) as [unknown, Array<{ name: string }>];
  return pending.map((m) => m.name);
}

async function assertEmptyDir(dir: string): Promise<void> {
  const entries = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw error;
  });
  if (entries.length > 0) throw new RestoreRefused(`${dir} is not empty; restore into a new directory`);
}

/** Creates the database when it does not exist; refuses one that has any table. */
async function prepareEmptyDatabase(dbUrl: string): Promise<void> {
  const target = mysqlConnectionOf(dbUrl);
  const server = new URL(dbUrl);
  server.pathname = '/';
  const admin = createDb(server.toString());
  try {
    await admin.raw(
      `CREATE DATABASE IF NOT EXISTS \`${target.database.replace(/`/g, '``')}\` CHARACTER SET utf8mb4`,
    );
    const [rows] = (await admin.raw(
      'SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ?',
      [target.database],
    )) as [Array<{ n: number | string }>];
    if (Number(rows[0]?.n ?? 0) > 0) {
      throw new RestoreRefused(`the database ${target.database} is not empty; restore into a new one`);
    }
  } finally {
    await admin.destroy();
  }
}
