/**
 * One `dfs admin` command: what it is called, one line for the usage, and what it does. Commands
 * run on the server's host with the server's own settings (the `DFS_*` variables), beside a
 * running app or with none; they print progress on stderr and their result on stdout, and end
 * with the process's exit code (0 done, 1 failed, 2 bad usage).
 */
export interface AdminCommand {
  name: string;
  /** `backup <dir>`: the arguments as the usage shows them. */
  usage: string;
  summary: string;
  run(args: string[]): Promise<number>;
}

/** Bad arguments: printed with the command's usage, exit code 2. */
export class AdminUsageError extends Error {
  override readonly name = 'AdminUsageError';
}
