/**
 * 6. Many users at once: U users each upload F small files (64 KiB – 4 MiB, random sizes and
 * content) one after another, all users concurrently, through the client core's Upload against
 * the app with a local node, on SQLite and on MariaDB. Files/s over the whole run and the latency
 * of each file from `start()` to done (hashing included: the core picks its own path per file —
 * chunked session or one multipart POST — and the run notes which calls it made). The files are
 * made before the clock starts.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { type DfsApi, fileSourceFromBytes, Upload } from '@dfs/client';
import { nodeUploadOptions } from '@dfs/client/node';
import { createTestDatabase, startMariaDb } from '@dfs/cluster/mariadb';
import { startApp } from '../lib/app.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { addFailure, addNote, addRow } from '../lib/report.ts';
import { traceTransport } from '../lib/trace.ts';
import { cpuSeconds, ioBytes, MiB, machineBusySeconds, percentile } from '../lib/util.ts';

export interface ConcurrentOptions {
  tmp: string;
  users: number;
  filesPerUser: number;
  runs: number;
  databases: ('sqlite' | 'mariadb')[];
}

const MIN = 64 * 1024;
const MAX = 4 * MiB;

interface RunResult {
  filesPerSecond: number;
  latenciesMs: number[];
  bytes: number;
  /** "createUpload 1000, putChunk 1180, completeUpload 1000" over the run */
  calls: string;
}

export async function benchConcurrent(o: ConcurrentOptions): Promise<void> {
  const results = new Map<string, RunResult[]>();
  for (const db of o.databases) {
    let dbUrl: string | undefined;
    let stopDb: (() => Promise<void>) | undefined;
    if (db === 'mariadb') {
      const server = await startMariaDb();
      stopDb = onCleanup('mariadb', () => server.stop());
      dbUrl = (await createTestDatabase(server.url)).url;
    }
    const app = await startApp({
      dataDir: path.join(o.tmp, `app-${db}`),
      nodes: `local://${path.join(o.tmp, `node-${db}`)}`,
      replicas: 1,
      ...(dbUrl ? { dbUrl } : {}),
    });
    const runs: RunResult[] = [];
    try {
      for (let r = 0; r < o.runs; r++) {
        console.error(`bench: ${o.users} users × ${o.filesPerUser} files on ${db}, run ${r + 1}/${o.runs}`);
        const apis: DfsApi[] = [];
        for (let i = 0; i < o.users; i += 10) {
          const batch = Array.from({ length: Math.min(10, o.users - i) }, (_, j) =>
            app.user(`${db}-r${r}-u${i + j}`),
          );
          apis.push(...(await Promise.all(batch)));
        }
        const files = makeUserFiles(o.users, o.filesPerUser);
        const cpu0 = cpuSeconds(app.pid);
        const io0 = ioBytes(app.pid).write;
        const client0 = process.cpuUsage();
        const busy0 = machineBusySeconds();
        const result = await manyUsersRun(apis, files);
        const busy = machineBusySeconds() - busy0;
        if (!result) return;
        runs.push(result);
        const client = process.cpuUsage(client0);
        const wall = (o.users * o.filesPerUser) / result.filesPerSecond;
        addNote(
          `6 many users, ${db} run ${r + 1}: ${(result.bytes / 1e6).toFixed(0)} MB in ${wall.toFixed(1)} s ` +
            `(${(result.bytes / 1e6 / wall).toFixed(0)} MB/s); app CPU ${(cpuSeconds(app.pid) - cpu0).toFixed(1)} s, ` +
            `client (bench process: hashing, HTTP) CPU ${((client.user + client.system) / 1e6).toFixed(1)} s, ` +
            `machine CPU ${busy.toFixed(1)} s (${((busy / (os.cpus().length * wall)) * 100).toFixed(0)} % of the cores), ` +
            `app disk writes ${((ioBytes(app.pid).write - io0) / 1e6).toFixed(0)} MB; transport calls: ${result.calls}`,
        );
      }
    } finally {
      await app.stop();
      await stopDb?.();
    }
    results.set(db, runs);
  }

  const label = `${o.users} users × ${o.filesPerUser} files (64 KiB–4 MiB), local node`;
  const sqlite = results.get('sqlite');
  for (const [db, runs] of results) {
    const other = db === 'mariadb' && sqlite ? sqlite : undefined;
    const all = runs.flatMap((r) => r.latenciesMs);
    addRow({
      group: '6 many users',
      what: `${label}, ${db === 'sqlite' ? 'SQLite' : 'MariaDB'}: throughput`,
      unit: 'files/s',
      values: runs.map((r) => r.filesPerSecond),
      higherIsBetter: true,
      ...(other ? { alt: { name: 'the same on SQLite', values: other.map((r) => r.filesPerSecond) } } : {}),
    });
    addRow({
      group: '6 many users',
      what: `${db === 'sqlite' ? 'SQLite' : 'MariaDB'}: p50 latency per file, start → done (${all.length} files)`,
      unit: 'ms',
      values: runs.map((r) => percentile(r.latenciesMs, 50)),
      ...(other
        ? { alt: { name: 'the same on SQLite', values: other.map((r) => percentile(r.latenciesMs, 50)) } }
        : {}),
    });
    addRow({
      group: '6 many users',
      what: `${db === 'sqlite' ? 'SQLite' : 'MariaDB'}: p99 latency per file, start → done`,
      unit: 'ms',
      values: runs.map((r) => percentile(r.latenciesMs, 99)),
      ...(other
        ? { alt: { name: 'the same on SQLite', values: other.map((r) => percentile(r.latenciesMs, 99)) } }
        : {}),
    });
  }
}

export interface UserFile {
  name: string;
  content: Buffer;
  sha1: string;
}

/**
 * The users' files, made (and their SHA-1s taken, to check what the server registers) before the
 * clock starts: the bench process then spends its share of the two cores on what a client does —
 * hashing, sending — not on making random bytes.
 */
export function makeUserFiles(users: number, filesPerUser: number): UserFile[][] {
  return Array.from({ length: users }, (_u, user) =>
    Array.from({ length: filesPerUser }, (_x, f) => {
      const content = randomBytes(randomInt(MIN, MAX + 1));
      return { name: `u${user}-f${f}.bin`, content, sha1: createHash('sha1').update(content).digest('hex') };
    }),
  );
}

/** One run of many users: each uploads its files in turn, all users at once. */
export async function manyUsersRun(apis: DfsApi[], files: UserFile[][]): Promise<RunResult | null> {
  const latenciesMs: number[] = [];
  let bytes = 0;
  let failed: string | null = null;
  const tracers = apis.map((api) => traceTransport(api));
  const t0 = performance.now();
  await Promise.all(
    apis.map(async (_api, user) => {
      for (const { name, content, sha1: expected } of files[user]!) {
        if (failed) break;
        const upload = new Upload(fileSourceFromBytes(content, name), {
          transport: tracers[user]!.transport,
          ...nodeUploadOptions,
        });
        const startedAt = performance.now();
        let doneAt = 0;
        upload.start();
        try {
          const file = await upload.result();
          doneAt = performance.now();
          if (file.sha1 !== expected || file.size !== content.length) {
            failed = `${name}: registered ${file.sha1}/${file.size}, expected ${expected}`;
          }
        } catch (error) {
          failed = `${name}: ${(error as Error).message}`;
        }
        latenciesMs.push(doneAt - startedAt);
        bytes += content.length;
      }
    }),
  );
  if (failed) {
    addFailure(`many users: ${failed}`);
    return null;
  }
  const seconds = (performance.now() - t0) / 1000;
  const counts = new Map<string, number>();
  for (const c of tracers.flatMap((t) => t.calls)) counts.set(c.method, (counts.get(c.method) ?? 0) + 1);
  const calls = [...counts].map(([m, n]) => `${m} ${n}`).join(', ');
  return { filesPerSecond: latenciesMs.length / seconds, latenciesMs, bytes, calls };
}
