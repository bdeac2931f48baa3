import { loadConfig } from '../../config.ts';
import { createDb } from '../../db/knex.ts';
import {
  freeMigrationLock,
  knownMigrations,
  migrationStatus,
  runPendingMigrations,
} from '../../services/operations/migrations.ts';
import { type AdminCommand, AdminUsageError } from '../command.ts';
import { type AdminIo, missingSqliteFile, processIo, redactDbUrl } from './io.ts';

const USAGE = 'migrate [--dry-run] [--unlock]';

/**
 * `dfs admin migrate`: which migrations this version would run on the configured database, in
 * order, and (without `--dry-run`) runs them with progress. The app runs the same ones itself when
 * it starts; this lets an operator see them first, or run them before starting instances.
 */
export async function migrate(args: string[], io: AdminIo): Promise<number> {
  const flags = new Set(args);
  for (const arg of flags) {
    if (arg !== '--dry-run' && arg !== '--unlock') throw new AdminUsageError(`unknown argument "${arg}"`);
  }
  const dryRun = flags.has('--dry-run');
  const config = loadConfig(io.env);
  const missing = missingSqliteFile(config.dbUrl);
  if (missing && dryRun) {
    const known = await knownMigrations();
    io.out(
      `database: none yet at ${missing}; the first start (or \`dfs admin migrate\`) makes it and runs all ${known.length} migrations\n`,
    );
    io.out('dry run: nothing was changed\n');
    return 0;
  }
  const db = createDb(config.dbUrl);
  try {
    if (flags.has('--unlock')) {
      if (dryRun) throw new AdminUsageError('--unlock changes the database; it takes no --dry-run');
      await freeMigrationLock(db);
      io.out('migration lock freed\n');
    }
    const status = await migrationStatus(db);
    io.out(`database: ${redactDbUrl(config.dbUrl)}\n`);
    io.out(`applied: ${status.applied.length} of the ${status.known.length} migrations this version has\n`);
    if (status.unknown.length > 0) {
      io.out(
        `FAIL: the database has migrations this version does not know (a newer release ran them): ${status.unknown.join(', ')}\n` +
          '      run that release (or newer); dfs does not migrate down\n',
      );
      return 1;
    }
    if (status.locked) {
      io.out(
        'note: the migration lock is held: an instance is migrating now, or one died while it did; ' +
          'if none is running, `dfs admin migrate --unlock` frees it\n',
      );
    }
    if (status.pending.length === 0) {
      io.out('pending: none, the schema is up to date\n');
      return 0;
    }
    io.out(`pending: ${status.pending.length}, in this order:\n`);
    for (const name of status.pending) io.out(`  ${name}\n`);
    if (dryRun) {
      io.out('dry run: nothing was changed\n');
      return 0;
    }
    const started = performance.now();
    const ran = await runPendingMigrations(db, ({ name, index, total, ms }) => {
      io.err(
        ms === undefined
          ? `[${index + 1}/${total}] ${name} …\n`
          : `[${index + 1}/${total}] ${name} done in ${Math.round(ms)} ms\n`,
      );
    });
    const left = (await migrationStatus(db)).pending;
    io.out(`ran ${ran.length} migration(s) in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    if (left.length > 0) {
      io.out(`FAIL: still pending: ${left.join(', ')}\n`);
      return 1;
    }
    return 0;
  } catch (error) {
    if ((error as Error).name === 'MigrationLocked') {
      io.out(
        'FAIL: another process holds the migration lock (an instance starting?); wait and run this again, ' +
          'or, if none is running, free it with `dfs admin migrate --unlock`\n',
      );
      return 1;
    }
    throw error;
  } finally {
    await db.destroy();
  }
}

export const command: AdminCommand = {
  name: 'migrate',
  usage: USAGE,
  summary: 'list the pending database migrations, and run them (--dry-run: only list)',
  run: (args) => migrate(args, processIo()),
};
