import type { Knex } from 'knex';
import { migrationSource } from '../../db/migrations.ts';

/** knex's bookkeeping tables (its defaults, which db/knex.ts keeps). */
const TABLE = 'knex_migrations';
const LOCK_TABLE = 'knex_migrations_lock';

export interface MigrationStatus {
  /** Every migration this version has, in order. */
  known: string[];
  /** Run on this database, in the order they ran. */
  applied: string[];
  /** Known and not run yet, in the order they will run. */
  pending: string[];
  /**
   * Run on this database but unknown to this version: a newer release migrated it. This version
   * refuses to start on it (knex: "the migration directory is corrupt"); downgrades are not a thing.
   */
  unknown: string[];
  /** knex's migration lock is held: a migration is running, or one died without freeing it. */
  locked: boolean;
}

export async function knownMigrations(): Promise<string[]> {
  return (await migrationSource.getMigrations([])).map((m) => migrationSource.getMigrationName(m));
}

/**
 * Where the database stands against this version's migrations. It only reads: knex's own
 * `migrate.list()` would create its bookkeeping tables on an empty database, which a dry run and
 * a readiness probe must not do.
 */
export async function migrationStatus(db: Knex): Promise<MigrationStatus> {
  const known = await knownMigrations();
  const hasTable = await db.schema.hasTable(TABLE);
  const applied = hasTable
    ? ((await db(TABLE).orderBy('id').select('name')) as Array<{ name: string }>).map((row) => row.name)
    : [];
  const done = new Set(applied);
  const knownSet = new Set(known);
  let locked = false;
  if (await db.schema.hasTable(LOCK_TABLE)) {
    const row = (await db(LOCK_TABLE).first('is_locked')) as { is_locked: number | boolean } | undefined;
    locked = Boolean(row && Number(row.is_locked) === 1);
  }
  return {
    known,
    applied,
    pending: known.filter((name) => !done.has(name)),
    unknown: applied.filter((name) => !knownSet.has(name)),
    locked,
  };
}

/**
 * Runs the pending migrations one at a time (each in its own transaction under knex's lock, as
 * the app's start does them all), telling `progress` before and after each.
 */
export async function runPendingMigrations(
  db: Knex,
  progress: (event: { name: string; index: number; total: number; ms?: number }) => void,
): Promise<string[]> {
  const { pending } = await migrationStatus(db);
  const ran: string[] = [];
  for (const [index, name] of pending.entries()) {
    progress({ name, index, total: pending.length });
    const started = performance.now();
    const [, log] = (await db.migrate.up({ migrationSource })) as [number, string[]];
    // Another instance may have run it meanwhile; knex then runs the next one or none.
    if (log.length === 0) break;
    ran.push(...log);
    progress({ name, index, total: pending.length, ms: performance.now() - started });
  }
  return ran;
}

/** Frees knex's migration lock after a migration that died holding it (no other may be running). */
export async function freeMigrationLock(db: Knex): Promise<void> {
  await db.migrate.forceFreeMigrationsLock({ migrationSource });
}
