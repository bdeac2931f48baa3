import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { freePort } from './ports.ts';

const execFileAsync = promisify(execFile);

export interface RunningMariaDb {
  /** `mysql://dfs:<password>@127.0.0.1:<port>` — no database; the user may create them. */
  url: string;
  port: number;
  pid: number;
  /** SIGKILL: what a crashed database host looks like to its clients. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export interface MariaDbOptions {
  /** Where the server's throwaway directory goes; default the system temp dir. */
  parentDir?: string;
  /**
   * Writes a GTID binlog under this server id, so the server can be a replication primary (or a
   * replica that can be promoted). Without it the binlog is off, as the tests want.
   */
  serverId?: number;
  /** InnoDB's buffer pool (default 64 MiB, enough for the tests; a million-file bench wants more). */
  bufferPoolMb?: number;
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

/** Debian keeps mariadbd in /usr/sbin, which is not on a non-root user's PATH. */
function findBinary(name: string, override: string | undefined): string {
  if (override) return override;
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(
    `${name} not found; install the mariadb-server package (scripts/lib/ensure-system-deps.sh does) ` +
      'or set DFS_TEST_MYSQL_URL to an existing server',
  );
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function logTail(file: string, lines = 20): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no error log)';
  }
}

/**
 * Starts a private MariaDB with real authentication on a free loopback port, in a throwaway data
 * directory. `--no-defaults` keeps the machine's /etc/mysql config (ports, sockets, plugins) out.
 */
export async function startMariaDb(options: MariaDbOptions = {}): Promise<RunningMariaDb> {
  const mariadbd = findBinary('mariadbd', process.env.DFS_TEST_MARIADBD);
  const installDb = findBinary('mariadb-install-db', process.env.DFS_TEST_MARIADB_INSTALL_DB);
  // A short prefix: the socket path must stay under the 108-byte sun_path limit.
  const dir = await mkdtemp(path.join(options.parentDir ?? tmpdir(), 'mdb-'));
  const dataDir = path.join(dir, 'data');
  const socket = path.join(dir, 'mysqld.sock');
  const errorLog = path.join(dir, 'error.log');
  const user = userInfo().username;

  // The bootstrap server has been seen to die with SIGSEGV now and then when two start at once;
  // a fresh data directory and a second try get past it.
  for (let attempt = 1; ; attempt++) {
    try {
      await execFileAsync(
        installDb,
        [
          '--no-defaults',
          `--datadir=${dataDir}`,
          `--user=${user}`,
          '--auth-root-authentication-method=normal',
          '--skip-test-db',
          '--skip-name-resolve',
        ],
        { timeout: START_TIMEOUT_MS },
      );
      break;
    } catch (error) {
      await rm(dataDir, { recursive: true, force: true });
      if (attempt < 3) continue;
      await rm(dir, { recursive: true, force: true });
      const e = error as { stderr?: string; message: string };
      throw new Error(`mariadb-install-db failed: ${e.stderr?.trim() || e.message}`);
    }
  }

  // The port is free when picked but another process may take it before mariadbd binds; a
  // second pick is the cheap answer to that race.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(
      mariadbd,
      [
        '--no-defaults',
        `--datadir=${dataDir}`,
        `--socket=${socket}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--pid-file=${path.join(dir, 'mysqld.pid')}`,
        `--log-error=${errorLog}`,
        // mariadbd refuses to run as root unless told to; elsewhere it runs as the caller.
        ...(process.getuid?.() === 0 ? ['--user=root'] : []),
        '--skip-name-resolve',
        ...(options.serverId === undefined
          ? ['--skip-log-bin']
          : [
              `--server-id=${options.serverId}`,
              `--log-bin=${path.join(dir, 'binlog')}`,
              '--binlog-format=ROW',
              // A promoted replica must carry on the primary's history for the servers behind it.
              '--log-slave-updates=ON',
              '--gtid-strict-mode=ON',
            ]),
        `--innodb-buffer-pool-size=${options.bufferPoolMb ?? 64}M`,
        // Durability is worthless for a database deleted after the run; these trade it for speed.
        '--innodb-flush-log-at-trx-commit=2',
        '--innodb-doublewrite=0',
        '--performance-schema=OFF',
        // Without /etc/mysql's config MariaDB 10.11 defaults to latin1.
        '--character-set-server=utf8mb4',
        '--collation-server=utf8mb4_unicode_ci',
        '--max-connections=500',
      ],
      { stdio: 'ignore' },
    );
    // If the test runner dies without calling stop(), the server must not outlive it.
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);

    try {
      const rootPassword = randomBytes(18).toString('base64url');
      const password = randomBytes(18).toString('base64url');
      await waitUntilReady(child, socket, errorLog);
      const admin = await mysql.createConnection({ socketPath: socket, user: 'root', password: '' });
      try {
        // Accounts are each server's own: a replica replaying them from the binlog would collide.
        await admin.query('SET SESSION sql_log_bin = 0');
        // Both host spellings: 127.0.0.1 for TCP clients, localhost in case one uses the socket.
        for (const host of ['127.0.0.1', 'localhost']) {
          await admin.query('CREATE USER ?@? IDENTIFIED BY ?', ['dfs', host, password]);
          await admin.query('GRANT ALL PRIVILEGES ON *.* TO ?@? WITH GRANT OPTION', ['dfs', host]);
        }
        // install-db leaves root on every loopback spelling with no password, which would let any
        // local user in for the life of the run.
        const [roots] = await admin.query<mysql.RowDataPacket[]>(
          "SELECT Host AS host FROM mysql.user WHERE User = 'root' AND Host <> 'localhost'",
        );
        for (const { host } of roots) await admin.query('DROP USER ?@?', ['root', host]);
        await admin.query('ALTER USER root@localhost IDENTIFIED BY ?', [rootPassword]);
      } finally {
        await admin.end();
      }
      const url = `mysql://dfs:${encodeURIComponent(password)}@127.0.0.1:${port}`;
      let stopped: Promise<void> | undefined;
      const stop = () => {
        stopped ??= (async () => {
          await terminate(child);
          process.removeListener('exit', killOnExit);
          await rm(dir, { recursive: true, force: true });
        })();
        return stopped;
      };
      const kill = async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited(child);
        }
      };
      return { url, port, pid: child.pid ?? 0, kill, stop };
    } catch (error) {
      lastError = error;
      await terminate(child);
      process.removeListener('exit', killOnExit);
      const log = await logTail(errorLog);
      if (!/Address already in use|Can't start server: Bind on TCP\/IP port/i.test(log)) break;
    }
  }
  const log = await logTail(errorLog);
  await rm(dir, { recursive: true, force: true });
  throw new Error(`MariaDB did not start: ${(lastError as Error)?.message}\n--- error log ---\n${log}`);
}

async function waitUntilReady(child: ChildProcess, socket: string, errorLog: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`mariadbd exited (${child.exitCode ?? child.signalCode}) before accepting connections`);
    }
    try {
      const conn = await mysql.createConnection({ socketPath: socket, user: 'root', password: '' });
      await conn.end();
      return;
    } catch (error) {
      lastError = error;
      await delay(50);
    }
  }
  throw new Error(
    `mariadbd was not ready after ${START_TIMEOUT_MS} ms: ${(lastError as Error)?.message}\n${await logTail(errorLog)}`,
  );
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  try {
    await done;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Makes `replica` follow `primary` by GTID from the primary's first transaction. Both must have
 * been started with a `serverId`; the replica should hold no data of its own yet.
 */
export async function startReplication(primary: RunningMariaDb, replica: RunningMariaDb): Promise<void> {
  const password = randomBytes(18).toString('base64url');
  const onPrimary = await mysql.createConnection(connectionOptions(primary.url));
  try {
    await onPrimary.query('SET SESSION sql_log_bin = 0');
    await onPrimary.query("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY ?", [password]);
    await onPrimary.query("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'");
  } finally {
    await onPrimary.end();
  }
  const onReplica = await mysql.createConnection(connectionOptions(replica.url));
  try {
    await onReplica.query("SET GLOBAL gtid_slave_pos = ''");
    await onReplica.query(
      `CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = ${Number(primary.port)},
         MASTER_USER = 'repl', MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos,
         MASTER_CONNECT_RETRY = 1`,
      [password],
    );
    await onReplica.query('START SLAVE');
    // Writes by the app's user would fork the replica's history from the primary's.
    await onReplica.query('SET GLOBAL read_only = ON');
  } finally {
    await onReplica.end();
  }
}

/**
 * Samples how far `replica` trails `primary`, as the app's read routing sees it: every `everyMs`
 * it reads the primary's GTID position and times how long the replica takes to reach it
 * (`MASTER_GTID_WAIT`). `stop()` ends the sampling and gives the lags in milliseconds.
 */
export function sampleReplicaLag(
  primaryUrl: string,
  replicaUrl: string,
  everyMs = 100,
): { stop(): Promise<number[]> } {
  const samples: number[] = [];
  let running = true;
  const loop = (async () => {
    const onPrimary = await mysql.createConnection(connectionOptions(primaryUrl));
    const onReplica = await mysql.createConnection(connectionOptions(replicaUrl));
    try {
      while (running) {
        const started = performance.now();
        const [rows] = await onPrimary.query<mysql.RowDataPacket[]>('SELECT @@gtid_binlog_pos AS pos');
        const [reached] = await onReplica.query<mysql.RowDataPacket[]>(
          'SELECT MASTER_GTID_WAIT(?, 30) AS r',
          [rows[0]?.pos ?? ''],
        );
        if (Number(reached[0]?.r) === 0) samples.push(performance.now() - started);
        await delay(everyMs);
      }
    } finally {
      await onPrimary.end();
      await onReplica.end();
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}

/** mysql2's connection options for a `mysql://user:pass@host:port[/db]` URL (the database left out). */
export function connectionOptions(url: string): mysql.ConnectionOptions {
  const parsed = new URL(url);
  if (parsed.protocol !== 'mysql:') throw new Error(`not a mysql:// URL: ${parsed.protocol}`);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 3306),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
  };
}

/**
 * A fresh, uniquely named database on the server at `baseUrl`, so that test files running in
 * parallel never see each other's rows.
 */
export async function createTestDatabase(
  baseUrl: string,
  /** A database whose tables (and their rows, for the small ones named) the new one starts with. */
  template?: { name: string; copyRowsOf: string[] },
): Promise<TestDatabase> {
  const name = `dfs_test_${randomBytes(6).toString('hex')}`;
  const options = connectionOptions(baseUrl);
  const conn = await mysql.createConnection(options);
  try {
    await conn.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
    if (template) await copySchema(conn, template.name, name, template.copyRowsOf);
  } finally {
    await conn.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    url: url.toString(),
    drop() {
      dropped ??= (async () => {
        const admin = await mysql.createConnection(options);
        try {
          await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
        } finally {
          await admin.end();
        }
      })();
      return dropped;
    },
  };
}

/**
 * Copies every table of `from` into `to` exactly as `SHOW CREATE TABLE` states it (foreign keys
 * included, which `CREATE TABLE … LIKE` would drop), and the rows of `rowsOf`: much faster than
 * running every migration again for each test database.
 */
async function copySchema(conn: mysql.Connection, from: string, to: string, rowsOf: string[]): Promise<void> {
  const [tables] = (await conn.query(
    'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ? AND table_type = ?',
    [from, 'BASE TABLE'],
  )) as unknown as [Array<{ name: string }>];
  await conn.query('SET SESSION foreign_key_checks = 0');
  try {
    for (const { name } of tables) {
      const [[created]] = (await conn.query(`SHOW CREATE TABLE \`${from}\`.\`${name}\``)) as unknown as [
        Array<{ 'Create Table': string }>,
      ];
      await conn.query(`USE \`${to}\``);
      await conn.query(created!['Create Table']);
    }
    for (const table of rowsOf) {
      await conn.query(`INSERT INTO \`${to}\`.\`${table}\` SELECT * FROM \`${from}\`.\`${table}\``);
    }
  } finally {
    await conn.query('SET SESSION foreign_key_checks = 1');
  }
}
