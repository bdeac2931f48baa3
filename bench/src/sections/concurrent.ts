/**
 * 6. Many users at once: U users each upload F small files (64 KiB – 4 MiB, random sizes and
 * content) one after another, all users concurrently, through the client core's Upload against
 * the app with a local node, on SQLite and on MariaDB. Files/s over the whole run and the latency
 * of each file from its POST /api/uploads to its complete's answer.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import path from 'node:path';
import { type DfsApi, fileSourceFromBytes, Upload, type UploadTransport } from '@dfs/client';
import { nodeHasher, nodeHashFile } from '@dfs/client/node';
import { createTestDatabase, startMariaDb } from '../../../packages/server/test/support/mariadb.ts';
import { startApp } from '../lib/app.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { addFailure, addNote, addRow } from '../lib/report.ts';
import { cpuSeconds, ioBytes, MiB, percentile } from '../lib/util.ts';

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
        const cpu0 = cpuSeconds(app.pid);
        const io0 = ioBytes(app.pid).write;
        const client0 = process.cpuUsage();
        const result = await oneRun(apis, o.filesPerUser);
        if (!result) return;
        runs.push(result);
        const client = process.cpuUsage(client0);
        const wall = (o.users * o.filesPerUser) / result.filesPerSecond;
        addNote(
          `6 many users, ${db} run ${r + 1}: ${(result.bytes / 1e6).toFixed(0)} MB in ${wall.toFixed(1)} s ` +
            `(${(result.bytes / 1e6 / wall).toFixed(0)} MB/s); app CPU ${(cpuSeconds(app.pid) - cpu0).toFixed(1)} s, ` +
            `client (bench process: hashing, HTTP) CPU ${((client.user + client.system) / 1e6).toFixed(1)} s, ` +
            `app disk writes ${((ioBytes(app.pid).write - io0) / 1e6).toFixed(0)} MB`,
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
      what: `${db === 'sqlite' ? 'SQLite' : 'MariaDB'}: p50 latency per file, create → complete (${all.length} files)`,
      unit: 'ms',
      values: runs.map((r) => percentile(r.latenciesMs, 50)),
      ...(other
        ? { alt: { name: 'the same on SQLite', values: other.map((r) => percentile(r.latenciesMs, 50)) } }
        : {}),
    });
    addRow({
      group: '6 many users',
      what: `${db === 'sqlite' ? 'SQLite' : 'MariaDB'}: p99 latency per file, create → complete`,
      unit: 'ms',
      values: runs.map((r) => percentile(r.latenciesMs, 99)),
      ...(other
        ? { alt: { name: 'the same on SQLite', values: other.map((r) => percentile(r.latenciesMs, 99)) } }
        : {}),
    });
  }
}

async function oneRun(apis: DfsApi[], filesPerUser: number): Promise<RunResult | null> {
  const latenciesMs: number[] = [];
  let bytes = 0;
  let failed: string | null = null;
  const t0 = performance.now();
  await Promise.all(
    apis.map(async (api, user) => {
      for (let f = 0; f < filesPerUser && !failed; f++) {
        const content = randomBytes(randomInt(MIN, MAX + 1));
        const expected = createHash('sha1').update(content).digest('hex');
        let createdAt = 0;
        let completedAt = 0;
        const transport: UploadTransport = {
          createUpload: (body, opts) => {
            createdAt ||= performance.now();
            return api.createUpload(body, opts);
          },
          getUpload: (id, opts) => api.getUpload(id, opts),
          putChunk: (...args) => api.putChunk(...args),
          abortUpload: (id, opts) => api.abortUpload(id, opts),
          completeUpload: async (id, opts) => {
            const res = await api.completeUpload(id, opts);
            completedAt = performance.now();
            return res;
          },
        };
        const upload = new Upload(fileSourceFromBytes(content, `u${user}-f${f}.bin`), {
          transport,
          hasher: nodeHasher,
          hashFile: nodeHashFile,
        });
        upload.start();
        try {
          const file = await upload.result();
          if (file.sha1 !== expected || file.size !== content.length) {
            failed = `user ${user} file ${f}: registered ${file.sha1}/${file.size}, expected ${expected}`;
          }
        } catch (error) {
          failed = `user ${user} file ${f}: ${(error as Error).message}`;
        }
        latenciesMs.push(completedAt - createdAt);
        bytes += content.length;
      }
    }),
  );
  if (failed) {
    addFailure(`many users: ${failed}`);
    return null;
  }
  const seconds = (performance.now() - t0) / 1000;
  return { filesPerSecond: latenciesMs.length / seconds, latenciesMs, bytes };
}
