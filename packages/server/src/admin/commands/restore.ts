import { parseArgs } from 'node:util';
import { loadConfig } from '../../config.ts';
import { RestoreRefused, restoreInstance } from '../../services/operations/backup/restore.ts';
import { type AdminCommand, AdminUsageError } from '../command.ts';
import { redactDbUrl } from './io.ts';

export const command: AdminCommand = {
  name: 'restore',
  usage: 'restore <dir> --data-dir <new> | --db-url <mysql://…> | --user <name> [--path </Folder>]',
  summary: "a new instance from a backup, or one user's tree or folder into this one",
  async run(args) {
    let parsed: ReturnType<typeof parse>;
    try {
      parsed = parse(args);
    } catch (error) {
      throw new AdminUsageError((error as Error).message);
    }
    const { values, positionals } = parsed;
    if (positionals.length !== 1) throw new AdminUsageError('name one backup folder');
    const dir = positionals[0] as string;
    const progress = (line: string) => process.stderr.write(`restore: ${line}\n`);
    if (values.user !== undefined) {
      if (values['data-dir'] || values['db-url']) {
        throw new AdminUsageError('--user restores into this instance; leave out --data-dir and --db-url');
      }
      return restoreUserTree(dir, values.user, values.path, progress);
    }
    if (values.path !== undefined) throw new AdminUsageError('--path goes with --user');
    if (!values['data-dir'] && !values['db-url']) {
      throw new AdminUsageError('say where to restore: --data-dir, --db-url, or --user');
    }
    try {
      const result = await restoreInstance({
        dir,
        dataDir: values['data-dir'],
        dbUrl: values['db-url'],
        progress,
      });
      if (result.manifest.secret === 'file' && !result.dataDir) {
        progress(
          `the backup's secret is in ${dir}/secret: put it in the new data directory, or set DFS_SECRET to it`,
        );
      }
      if (result.manifest.secret === 'env')
        progress('the backed-up server had DFS_SECRET set: set the same value');
      progress('start dfs with this database and DFS_NODES naming the same nodes');
      process.stdout.write(
        `${result.dbUrl.startsWith('sqlite://') ? result.dataDir : redactDbUrl(result.dbUrl)}\n`,
      );
      return 0;
    } catch (error) {
      if (error instanceof RestoreRefused) {
        process.stderr.write(`dfs admin restore: ${error.message}\n`);
        return 2;
      }
      throw error;
    }
  },
};

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string' },
      'db-url': { type: 'string' },
      user: { type: 'string' },
      path: { type: 'string' },
    },
  });
}

/** Into the live instance, through its own services: the app is built (no listener, no jobs). */
async function restoreUserTree(
  dir: string,
  username: string,
  folder: string | undefined,
  progress: (line: string) => void,
): Promise<number> {
  const config = loadConfig();
  const { buildApp } = await import('../../app.ts');
  const { restoreTree } = await import('../../services/operations/backup/partial.ts');
  const app = await buildApp(config, {
    logger: { level: config.logLevel === 'info' ? 'warn' : config.logLevel, stream: process.stderr },
  });
  try {
    const result = await restoreTree({ dir, app, username, folder, progress });
    progress(
      `${result.files} files (${result.bytes} bytes) and ${result.folders} folders restored` +
        (result.reregistered > 0
          ? `, ${result.reregistered} contents registered again from the backup`
          : '') +
        (result.skipped.length > 0 ? `, ${result.skipped.length} skipped` : ''),
    );
    process.stdout.write(`/${result.folder.name}\n`);
    return result.skipped.length > 0 ? 1 : 0;
  } finally {
    await app.close();
  }
}
