/**
 * `dfs admin <command>`: operations run on the server's host (backup, restore, verify, migrate,
 * doctor). Each command loads only its own module, so `dfs admin help` starts fast and a command
 * pulls in only what it needs.
 */
import { ConfigError } from '../config.ts';
import { type AdminCommand, AdminUsageError } from './command.ts';

const COMMANDS: Record<string, () => Promise<{ command: AdminCommand }>> = {
  backup: () => import('./commands/backup.ts'),
  restore: () => import('./commands/restore.ts'),
  verify: () => import('./commands/verify.ts'),
  migrate: () => import('./commands/migrate.ts'),
  doctor: () => import('./commands/doctor.ts'),
};

async function usage(): Promise<string> {
  const lines = await Promise.all(
    Object.values(COMMANDS).map(async (load) => {
      const { command } = await load();
      return `  dfs admin ${command.usage.padEnd(34)} ${command.summary}`;
    }),
  );
  return `usage:\n${lines.join('\n')}\nsettings: the server's DFS_* variables (see the README)`;
}

export async function adminMain(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    (name ? process.stdout : process.stderr).write(`${await usage()}\n`);
    return name ? 0 : 2;
  }
  const load = COMMANDS[name];
  if (!load) {
    process.stderr.write(`dfs admin: unknown command "${name}"\n${await usage()}\n`);
    return 2;
  }
  const { command } = await load();
  try {
    return await command.run(args);
  } catch (error) {
    if (error instanceof AdminUsageError) {
      process.stderr.write(
        `dfs admin ${command.name}: ${error.message}\nusage: dfs admin ${command.usage}\n`,
      );
      return 2;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`dfs admin ${command.name}: bad configuration: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`dfs admin ${command.name}: ${(error as Error).message}\n`);
    return 1;
  }
}
