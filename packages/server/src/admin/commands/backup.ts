import { parseArgs } from 'node:util';
import { loadConfig } from '../../config.ts';
import { createDb } from '../../db/knex.ts';
import { takeBackup } from '../../services/operations/backup/take.ts';
import { type AdminCommand, AdminUsageError } from '../command.ts';

export const command: AdminCommand = {
  name: 'backup',
  usage: 'backup [<dir>]',
  summary: 'a consistent backup of the metadata (and its manifest) into <dir>/<UTC time>/',
  async run(args) {
    const { positionals } = parseCommandArgs(args);
    const config = loadConfig();
    const dir = positionals[0] ?? config.backup.dir;
    if (!dir) throw new AdminUsageError('name the folder to back up into (or set DFS_BACKUP_DIR)');
    const db = createDb(config.dbUrl);
    try {
      if (!(await db.schema.hasTable('backups'))) {
        throw new Error(
          'the database has not been upgraded to this version yet: start the server (or run `dfs admin migrate`) first',
        );
      }
      const result = await takeBackup({
        config,
        db,
        dir,
        kind: 'manual',
        progress: (line) => process.stderr.write(`backup: ${line}\n`),
      });
      process.stdout.write(`${result.dir}\n`);
      return 0;
    } finally {
      await db.destroy();
    }
  },
};

function parseCommandArgs(args: string[]) {
  try {
    const parsed = parseArgs({ args, allowPositionals: true, options: {} });
    if (parsed.positionals.length > 1) throw new AdminUsageError('one folder at most');
    return parsed;
  } catch (error) {
    if (error instanceof AdminUsageError) throw error;
    throw new AdminUsageError((error as Error).message);
  }
}
