import { existsSync } from 'node:fs';
import { sqliteFileOf } from '../../db/knex.ts';

/**
 * Where a command reads its settings and writes its lines: the process's, or a test's. Results
 * go to `out` (stdout), progress to `err` (stderr), as admin/command.ts has it.
 */
export interface AdminIo {
  env: NodeJS.ProcessEnv;
  out(text: string): void;
  err(text: string): void;
}

export function processIo(): AdminIo {
  return {
    env: process.env,
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  };
}

/** A database URL fit to print: its password left out. */
export function redactDbUrl(url: string): string {
  if (!url.startsWith('mysql://')) return url;
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

/**
 * The SQLite file a `sqlite://` URL names when it does not exist yet (opening it would make it:
 * a command that only looks must not), else null.
 */
export function missingSqliteFile(url: string): string | null {
  if (!url.startsWith('sqlite://')) return null;
  const file = sqliteFileOf(url);
  return existsSync(file) ? null : file;
}
