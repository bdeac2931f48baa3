import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { mysqlConnectionOf } from '../../../db/knex.ts';

/** The parts of a `mysql://user:pass@host:port/db` URL the command-line clients take. */
/** Where a dump is read from or loaded into: the database URL's parts (db/knex.ts). */
export type MysqlTarget = ReturnType<typeof mysqlConnectionOf>;

/** An option-file value: quoted, with the escapes the MySQL/MariaDB option parser undoes. */
function optionValue(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/**
 * Runs `work` with a `--defaults-extra-file` holding the credentials: on a command line the
 * password would show in `ps` to every user of the host. The file is 0600 in a 0700 directory
 * and removed afterwards, whatever happens.
 */
export async function withDefaultsFile<T>(
  target: MysqlTarget,
  work: (file: string) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-mysql-'));
  const file = path.join(dir, 'client.cnf');
  try {
    await writeFile(
      file,
      [
        '[client]',
        `host=${optionValue(target.host)}`,
        `port=${target.port}`,
        `user=${optionValue(target.user)}`,
        `password=${optionValue(target.password)}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    return await work(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A database name that cannot pass for an option. */
function databaseArg(target: MysqlTarget): string {
  if (!target.database || target.database.startsWith('-')) {
    throw new Error(`not a database name: ${JSON.stringify(target.database)}`);
  }
  return target.database;
}

/** The first of `names` found on PATH (MariaDB's names first, then MySQL's). */
async function findTool(names: string[]): Promise<string> {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  const { access } = await import('node:fs/promises');
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = path.join(dir, name);
      if (
        await access(candidate).then(
          () => true,
          () => false,
        )
      )
        return candidate;
    }
  }
  throw new Error(`none of ${names.join(', ')} is installed (the MariaDB or MySQL client package has them)`);
}

/** Runs a client tool, its stdin and stdout optionally files; rejects with its stderr's tail. */
function run(tool: string, args: string[], io: { stdin?: string; stdout?: string } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, {
      stdio: [io.stdin ? 'pipe' : 'ignore', io.stdout ? 'pipe' : 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      stderr = (stderr + text).slice(-4000);
    });
    const piping: Promise<void>[] = [];
    if (io.stdin && child.stdin) piping.push(pipeline(createReadStream(io.stdin), child.stdin));
    if (io.stdout && child.stdout)
      piping.push(pipeline(child.stdout, createWriteStream(io.stdout, { mode: 0o600 })));
    child.once('error', reject);
    child.once('close', (code) => {
      Promise.all(piping).then(
        () =>
          code === 0
            ? resolve()
            : reject(
                new Error(`${path.basename(tool)} exited with ${code}: ${stderr.trim() || 'no message'}`),
              ),
        reject,
      );
    });
  });
}

/**
 * A consistent dump of the whole database into `file`: `--single-transaction` reads every table
 * in one InnoDB snapshot while the app keeps writing (no table locks).
 */
export async function dumpDatabase(target: MysqlTarget, file: string): Promise<void> {
  const tool = await findTool(['mariadb-dump', 'mysqldump']);
  await withDefaultsFile(target, (defaults) =>
    run(
      tool,
      [
        `--defaults-extra-file=${defaults}`,
        '--single-transaction',
        '--quick',
        '--skip-lock-tables',
        '--no-tablespaces',
        '--hex-blob',
        '--default-character-set=utf8mb4',
        '--routines',
        '--triggers',
        databaseArg(target),
      ],
      { stdout: file },
    ),
  );
}

/** Loads a dump into the (empty) database of `target`. */
export async function loadDump(target: MysqlTarget, file: string): Promise<void> {
  const tool = await findTool(['mariadb', 'mysql']);
  await withDefaultsFile(target, (defaults) =>
    run(tool, [`--defaults-extra-file=${defaults}`, '--default-character-set=utf8mb4', databaseArg(target)], {
      stdin: file,
    }),
  );
}
