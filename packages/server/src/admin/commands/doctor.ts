import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { type Config, ConfigError, loadConfig } from '../../config.ts';
import { createDb, type Db, dialectOf } from '../../db/knex.ts';
import { migrationStatus } from '../../services/operations/migrations.ts';
import { parseNodeUrl, redactNodeUrl } from '../../storage/node-spec.ts';
import { createNode } from '../../storage/node-url.ts';
import { objectKey, type StorageNode } from '../../storage/types.ts';
import { type AdminCommand, AdminUsageError } from '../command.ts';
import { type AdminIo, missingSqliteFile, processIo, redactDbUrl } from './io.ts';

type Level = 'ok' | 'warn' | 'FAIL';

/** A check that takes longer than this is reported as not answering. */
const CHECK_TIMEOUT_MS = 10_000;
/** Clock skew beyond these: leases, sessions and expiries are judged by the app's clock. */
const SKEW_WARN_MS = 2_000;
const SKEW_FAIL_MS = 30_000;

function within<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not answer within ${CHECK_TIMEOUT_MS / 1000} s`)),
      CHECK_TIMEOUT_MS,
    );
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

const bytes = (n: number) =>
  n >= 1024 ** 3
    ? `${(n / 1024 ** 3).toFixed(1)} GiB`
    : n >= 1024 ** 2
      ? `${(n / 1024 ** 2).toFixed(1)} MiB`
      : `${n} B`;

/**
 * `dfs admin doctor`: checks a deployment as this host sees it, a line per check (ok, warn, or
 * FAIL with what to do), and ends with 1 when anything failed. It reads the server's settings
 * and changes nothing but one small scratch object per node, written and deleted again.
 */
export async function doctor(args: string[], io: AdminIo): Promise<number> {
  if (args.length > 0) throw new AdminUsageError(`unknown argument "${args[0]}"`);
  let failed = false;
  const line = (level: Level, check: string, text: string, fix?: string) => {
    if (level === 'FAIL') failed = true;
    io.out(`${level.padEnd(4)}  ${check}: ${text}${fix ? `\n      → ${fix}` : ''}\n`);
  };

  let config: Config;
  try {
    config = loadConfig(io.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    line('FAIL', 'config', error.message, 'fix the DFS_* variable named (the README lists them all)');
    return 1;
  }
  line(
    'ok',
    'config',
    `the DFS_* settings parse (${config.nodeUrls.length} node(s), DFS_REPLICAS=${config.replicas})`,
  );

  await checkDatabase(config, line);
  await checkNodes(config, line);
  checkAccel(config, line);
  return failed ? 1 : 0;
}

type Line = (level: Level, check: string, text: string, fix?: string) => void;

async function checkDatabase(config: Config, line: Line): Promise<void> {
  const dialect = dialectOf(config.dbUrl);
  const where = redactDbUrl(config.dbUrl);
  const missing = missingSqliteFile(config.dbUrl);
  if (missing) {
    line(
      'warn',
      'database',
      `no SQLite database at ${missing} yet`,
      'the app makes it at its first start; if one should be there, check DFS_DATA_DIR / DFS_DB_URL',
    );
    return;
  }
  let db: Db | undefined;
  try {
    db = createDb(config.dbUrl);
    const started = Date.now();
    const version =
      dialect === 'sqlite'
        ? `SQLite ${((await within(db.raw('SELECT sqlite_version() AS v'), 'the database')) as Array<{ v: string }>)[0]!.v}`
        : ((
            (await within(
              db.raw('SELECT VERSION() AS v, UNIX_TIMESTAMP(NOW(3)) * 1000 AS t'),
              'the database',
            )) as [Array<{ v: string; t: string | number }>]
          )[0][0]!.v as string);
    line('ok', 'database', `${where} answers: ${version}`);

    if (dialect === 'mysql') {
      // The server's clock read halfway through the round trip, against this host's.
      const sent = Date.now();
      const [[row]] = (await db.raw('SELECT UNIX_TIMESTAMP(NOW(3)) * 1000 AS t')) as [
        Array<{ t: string | number }>,
      ];
      const received = Date.now();
      const skew = Number(row!.t) - (sent + received) / 2;
      const text = `the database server's clock is ${Math.abs(skew).toFixed(0)} ms ${skew >= 0 ? 'ahead of' : 'behind'} this host's`;
      const fix = 'run NTP (chrony, systemd-timesyncd) on every app and database host';
      if (Math.abs(skew) >= SKEW_FAIL_MS) line('FAIL', 'clock', text, fix);
      else if (Math.abs(skew) >= SKEW_WARN_MS) line('warn', 'clock', text, fix);
      else line('ok', 'clock', text);
    } else {
      line('ok', 'clock', `SQLite lives on this host (checked in ${Date.now() - started} ms)`);
    }

    const status = await within(migrationStatus(db), 'the database');
    if (status.unknown.length > 0) {
      line(
        'FAIL',
        'migrations',
        `the database has ${status.unknown.length} migration(s) this version does not know: ${status.unknown.join(', ')}`,
        'a newer release migrated this database: run that release (dfs does not migrate down)',
      );
    } else if (status.pending.length > 0) {
      line(
        'warn',
        'migrations',
        `${status.pending.length} pending: ${status.pending.join(', ')}`,
        'they run when the app starts; `dfs admin migrate --dry-run` shows them, `dfs admin migrate` runs them (back up first)',
      );
    } else {
      line('ok', 'migrations', `all ${status.known.length} applied`);
    }
    if (status.locked) {
      line(
        'warn',
        'migrations',
        'the migration lock is held: an instance is migrating, or one died while it did',
        'if no instance is starting, `dfs admin migrate --unlock` frees it',
      );
    }
  } catch (error) {
    line(
      'FAIL',
      'database',
      `${where}: ${(error as Error).message}`,
      dialect === 'mysql'
        ? 'check DFS_DB_URL (host, port, user, password, database) and that the server runs and lets this host in'
        : 'check DFS_DB_URL / DFS_DATA_DIR: the file must be readable and writable by this user',
    );
  } finally {
    await db?.destroy().catch(() => undefined);
  }
}

async function checkNodes(config: Config, line: Line): Promise<void> {
  const draining = new Set(config.drainNodes);
  let writable = 0;
  for (const url of config.nodeUrls) {
    const label = `node ${redactNodeUrl(url)}`;
    let node: StorageNode | undefined;
    try {
      node = await createNode(parseNodeUrl(url));
      const driver = node;
      await within(
        (async () => {
          await driver.connect();
          await driver.ping();
        })(),
        'the node',
      );
      const usage = await within(node.usage(), 'the node');
      // A scratch object under a key no content has (the SHA-1 of random bytes): written, then deleted.
      const probe = randomBytes(64);
      const key = objectKey(createHash('sha1').update(probe).digest('hex'));
      await within(node.put(key, Readable.from([probe]), probe.length), 'a write to the node');
      await within(node.delete(key), 'a delete on the node');
      if (usage.freeBytes === null) {
        line('ok', label, 'reachable and writable (it reports no free space)');
      } else if (usage.freeBytes < config.minFreeBytes) {
        line(
          'FAIL',
          label,
          `reachable and writable, but ${bytes(usage.freeBytes)} free is below DFS_MIN_FREE_BYTES (${bytes(config.minFreeBytes)}): it takes no uploads`,
          'free space on it, add a node, or lower DFS_MIN_FREE_BYTES',
        );
      } else {
        line(
          'ok',
          label,
          `reachable and writable, ${bytes(usage.freeBytes)} free (DFS_MIN_FREE_BYTES ${bytes(config.minFreeBytes)})`,
        );
      }
      if (![url, node.name, redactNodeUrl(url)].some((key) => draining.has(key))) writable++;
    } catch (error) {
      line(
        'FAIL',
        label,
        (error as Error).message,
        "check that the node answers from this host and that the app's user may create and delete files in its directory or bucket",
      );
    } finally {
      await node?.close().catch(() => undefined);
    }
  }
  if (writable < config.replicas) {
    line(
      'warn',
      'replicas',
      `${writable} writable node(s) for DFS_REPLICAS=${config.replicas}: contents get ${writable} cop${writable === 1 ? 'y' : 'ies'}`,
      'add nodes, or set DFS_REPLICAS to the copies you can keep',
    );
  } else {
    line('ok', 'replicas', `${writable} writable node(s) for DFS_REPLICAS=${config.replicas}`);
  }
}

function checkAccel(config: Config, line: Line): void {
  if (config.accelLocations.length === 0) {
    line('ok', 'accel', 'DFS_ACCEL_REDIRECT is off: the app sends downloads itself');
    return;
  }
  for (const { location, node } of config.accelLocations) {
    const url = config.nodeUrls.find((candidate) => {
      const spec = parseNodeUrl(candidate);
      const name = spec.kind === 'local' ? `local:${spec.root}` : undefined;
      return [candidate, redactNodeUrl(candidate), name].includes(node);
    });
    if (!url) {
      line(
        'FAIL',
        'accel',
        `${location} maps to ${redactNodeUrl(node)}, which is not one of DFS_NODES`,
        'name the node as in DFS_NODES (its URL or its name)',
      );
      continue;
    }
    const spec = parseNodeUrl(url);
    if (spec.kind === 's3') {
      line(
        'FAIL',
        'accel',
        `${location} maps to an S3 node, whose downloads are presigned redirects`,
        'drop it from DFS_ACCEL_REDIRECT',
      );
    } else {
      const root = spec.kind === 'local' ? spec.root : `${spec.host}:${spec.root}`;
      line(
        'ok',
        'accel',
        `${location} → ${redactNodeUrl(url)}: nginx must serve ${location} from ${root} (internal; alias)`,
      );
    }
  }
}

export const command: AdminCommand = {
  name: 'doctor',
  usage: 'doctor',
  summary: 'check the configuration, database, migrations, clock, nodes and accel mapping',
  run: (args) => doctor(args, processIo()),
};
