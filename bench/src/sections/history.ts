/**
 * 13. The undo button at scale: a folder of F small files (1–4 KiB), every one of them then
 * overwritten through WebDAV by one app password (what ransomware or a broken sync client does),
 * and the folder restored to the moment before (`POST /api/restore`, a job followed to its end).
 * Restore time against the alternative a user without it has: uploading the originals again from a
 * backup (the same F files through `POST /api/files/batch`, timed when the folder was made). The
 * nodes' bytes are counted before and after the restore: it must copy none. Local node, SQLite
 * and MariaDB.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DfsApi } from '@dfs/client';
import { createTestDatabase, startMariaDb } from '@dfs/cluster/mariadb';
import { startApp } from '../lib/app.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { addFailure, addNote, addRow } from '../lib/report.ts';
import { cpuSeconds } from '../lib/util.ts';

export interface HistoryOptions {
  tmp: string;
  files: number;
  runs: number;
  databases: ('sqlite' | 'mariadb')[];
}

interface RunResult {
  restoreMs: number;
  uploadMs: number;
  overwriteMs: number;
  nodeBytesCopied: number;
  appCpu: number;
}

const BATCH = 100;
const WRITERS = 16;

export async function benchHistory(o: HistoryOptions): Promise<void> {
  const results = new Map<string, RunResult[]>();
  for (const db of o.databases) {
    let dbUrl: string | undefined;
    if (db === 'mariadb') {
      const server = await startMariaDb();
      onCleanup('mariadb', () => server.stop());
      dbUrl = (await createTestDatabase(server.url)).url;
    }
    const nodeDir = path.join(o.tmp, `history-node-${db}`);
    const app = await startApp({
      dataDir: path.join(o.tmp, `history-app-${db}`),
      nodes: `local://${nodeDir}`,
      replicas: 1,
      ...(dbUrl ? { dbUrl } : {}),
    });
    const runs: RunResult[] = [];
    try {
      for (let r = 0; r < o.runs; r++) {
        console.error(`bench: restore of a ${o.files}-file folder on ${db}, run ${r + 1}/${o.runs}`);
        const api = await app.user(`history-${db}-${r}`);
        const result = await restoreRun(api, app.url, nodeDir, app.pid, o.files, `history-${db}-${r}`);
        if (!result) return;
        runs.push(result);
        addNote(
          `13 restore, ${db} run ${r + 1}: ${o.files} files uploaded in ${(result.uploadMs / 1000).toFixed(1)} s, ` +
            `overwritten through WebDAV in ${(result.overwriteMs / 1000).toFixed(1)} s, restored in ` +
            `${(result.restoreMs / 1000).toFixed(2)} s (app CPU ${result.appCpu.toFixed(1)} s); node bytes ` +
            `written by the restore: ${result.nodeBytesCopied}`,
        );
      }
    } finally {
      await app.stop();
    }
    results.set(db, runs);
  }
  for (const [db, runs] of results) {
    if (runs.length === 0) continue;
    const label = db === 'sqlite' ? 'SQLite' : 'MariaDB';
    addRow({
      group: '13 restore',
      what: `restore a ${o.files.toLocaleString('en')}-file folder to before one app password overwrote every file (WebDAV), local node, ${label}: request → job done`,
      unit: 's',
      values: runs.map((r) => r.restoreMs / 1000),
      alt: { name: 'uploading the originals again (batch API)', values: runs.map((r) => r.uploadMs / 1000) },
      higherIsBetter: false,
    });
    addRow({
      group: '13 restore',
      what: `bytes the restore wrote on the nodes, ${label}`,
      unit: 'MB',
      values: runs.map((r) => r.nodeBytesCopied / 1e6),
      higherIsBetter: false,
    });
  }
}

async function restoreRun(
  api: DfsApi,
  url: string,
  nodeDir: string,
  pid: number,
  count: number,
  name: string,
): Promise<RunResult | null> {
  const folder = (await api.createFolder(`Big-${name}`)).file;
  const originals = Array.from({ length: count }, (_, i) => ({
    name: `file-${String(i).padStart(5, '0')}.bin`,
    bytes: randomBytes(randomInt(1024, 4097)),
  }));
  const t0 = performance.now();
  for (let i = 0; i < count; i += BATCH) {
    await api.uploadBatch(
      originals
        .slice(i, i + BATCH)
        .map((f) => ({ blob: new Blob([f.bytes]), name: f.name, parentId: folder.id })),
    );
  }
  const uploadMs = performance.now() - t0;
  await new Promise((resolve) => setTimeout(resolve, 20));
  const before = new Date().toISOString();
  await new Promise((resolve) => setTimeout(resolve, 20));

  // The attack: every file overwritten by one app password through WebDAV.
  const { secret } = await api.createAppPassword('bench attacker');
  const basic = `Basic ${Buffer.from(`${name}:${secret}`).toString('base64')}`;
  const t1 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      for (let i = next++; i < count; i = next++) {
        const res = await fetch(`${url}/dav/Big-${name}/${originals[i]!.name}`, {
          method: 'PUT',
          headers: { authorization: basic },
          body: randomBytes(originals[i]!.bytes.length),
        });
        if (res.status !== 204) throw new Error(`WebDAV PUT answered ${res.status}`);
      }
    }),
  );
  const overwriteMs = performance.now() - t1;

  const nodeBytes0 = await bytesUnder(nodeDir);
  const cpu0 = cpuSeconds(pid);
  const t2 = performance.now();
  const answer = await api.restore({ folderId: folder.id, at: before });
  const result = 'jobId' in answer ? (await api.waitForJob(answer.jobId, { intervalMs: 50 })).result : answer;
  const restoreMs = performance.now() - t2;
  const appCpu = cpuSeconds(pid) - cpu0;
  const nodeBytesCopied = (await bytesUnder(nodeDir)) - nodeBytes0;
  if (result?.restored !== count) {
    addFailure(`13 restore: ${JSON.stringify(result)} for ${count} overwritten files`);
    return null;
  }
  // Every file has its original bytes again.
  const want = new Map(originals.map((f) => [f.name, createHash('sha1').update(f.bytes).digest('hex')]));
  const listed = await api.listAllFiles({ parentId: folder.id });
  const wrong = listed.items.filter((e) => want.get(e.name) !== e.sha1).length;
  if (wrong > 0 || listed.items.length !== count) {
    addFailure(`13 restore: ${wrong} of ${listed.items.length} files without their original SHA-1`);
    return null;
  }
  return { restoreMs, uploadMs, overwriteMs, nodeBytesCopied, appCpu };
}

async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}
