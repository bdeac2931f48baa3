import { mkdirSync } from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { migrationSource } from './migrations.ts';
import { cacheStatements } from './statement-cache.ts';

export type Db = Knex;
export type DbDialect = 'sqlite' | 'mysql';

export function dialectOf(url: string): DbDialect {
  if (url.startsWith('sqlite://')) return 'sqlite';
  if (url.startsWith('mysql://')) return 'mysql';
  throw new Error(`unsupported database URL scheme: ${url.split(':')[0]}`);
}

/** The file a `sqlite://` URL names, as given (relative to the working directory or absolute). */
export function sqliteFileOf(url: string): string {
  return decodeURIComponent(url.slice('sqlite://'.length));
}

/** Where a `mysql://user:pass@host:port/db` URL points, its parts decoded. */
export function mysqlConnectionOf(url: string): {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
} {
  const parsed = new URL(url);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 3306),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database: decodeURIComponent(parsed.pathname.slice(1)),
  };
}

export function createDb(url: string): Db {
  if (dialectOf(url) === 'sqlite') {
    const filename = sqliteFileOf(url);
    mkdirSync(path.dirname(path.resolve(filename)), { recursive: true });
    return knexFactory({
      client: 'better-sqlite3',
      connection: { filename },
      useNullAsDefault: true,
      pool: {
        // One writer at a time is SQLite's model; WAL lets readers run beside it, busy_timeout
        // makes a second writer wait instead of failing with SQLITE_BUSY. `synchronous = NORMAL`
        // leaves the WAL's fsync out of COMMIT (it would run on the event loop): WalSync makes it
        // from the thread pool before any write's response goes out, so what a client was told is
        // stored survives a power cut too.
        afterCreate(
          conn: { pragma(sql: string): unknown; prepare(sql: string): unknown },
          done: (err: Error | null, conn: unknown) => void,
        ) {
          conn.pragma('journal_mode = WAL');
          conn.pragma('synchronous = NORMAL');
          conn.pragma('foreign_keys = ON');
          conn.pragma('busy_timeout = 10000');
          cacheStatements(conn);
          done(null, conn);
        },
        min: 1,
        max: 1,
      },
    });
  }
  return knexFactory({
    client: 'mysql2',
    connection: {
      ...mysqlConnectionOf(url),
      charset: 'utf8mb4',
      // Sizes are BIGINT; they stay below 2^53, so plain numbers are exact.
      supportBigNumbers: true,
      bigNumberStrings: false,
      timezone: 'Z',
    },
    pool: { min: 0, max: 10 },
  });
}

/**
 * How long a start waits for another instance's migrations. knex's lock is a row: on MySQL each
 * DDL statement commits, so a second instance sees it taken at once instead of blocking on it,
 * and knex would fail that start.
 */
const MIGRATION_LOCK_WAIT_MS = 10 * 60_000;

export async function migrate(db: Db, options: { lockWaitMs?: number; pollMs?: number } = {}): Promise<void> {
  const { lockWaitMs = MIGRATION_LOCK_WAIT_MS, pollMs = 1_000 } = options;
  const started = Date.now();
  for (;;) {
    try {
      await db.migrate.latest({ migrationSource });
      return;
    } catch (error) {
      if ((error as Error).name !== 'MigrationLocked') throw error;
      if (Date.now() - started >= lockWaitMs) {
        throw new Error(
          `another process held the migration lock for ${Math.round(lockWaitMs / 1000)} s; if none is ` +
            'migrating (one died while it did), free it with `dfs admin migrate --unlock`',
          { cause: error },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }
}

/** MySQL duplicate-key and SQLite unique-constraint errors look different; callers ask one question. */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string; errno?: number } | null;
  return (
    e?.code === 'ER_DUP_ENTRY' ||
    e?.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  );
}

/** A row that points at a parent that is gone (an upload deleted while one of its chunks arrived). */
export function isForeignKeyViolation(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return code === 'ER_NO_REFERENCED_ROW_2' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

/** The database rolled the transaction back to break a deadlock, or a lock wait timed out. */
export function isLockConflict(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'SQLITE_BUSY';
}
