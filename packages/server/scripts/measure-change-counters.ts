/**
 * What the folder change counters (folder ETags) add to a write, on SQLite (MariaDB with
 * `--mariadb`): a file added 30 folders deep, a file added to and renamed in a folder of 100,000
 * files, and a file moved from 30 folders deep to that folder.
 *   node --import tsx packages/server/scripts/measure-change-counters.ts [--mariadb]
 * Prints the median and p95 over 50 runs of each, and the same write without the counters.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase, startMariaDb } from '@dfs/cluster/mariadb';
import { createDb, migrate } from '../src/db/knex.ts';
import type { FileRow } from '../src/repositories/files.ts';
import { Repositories } from '../src/repositories/index.ts';

const DEPTH = 30;
const BIG_FOLDER = 100_000;
const RUNS = 50;

function row(id: string, parent: string, name: string, kind: FileRow['kind'], now: number): FileRow {
  return {
    id,
    user_id: 'u1',
    parent_id: parent,
    kind,
    name,
    live_name: name,
    content_id: null,
    size: kind === 'file' ? 1000 : 0,
    mime: null,
    status: 'active',
    trash_root_id: null,
    trashed_at: null,
    created_at: now,
    updated_at: now,
  };
}

async function time(label: string, work: (i: number) => Promise<unknown>): Promise<void> {
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    await work(i);
    ms.push(performance.now() - start);
  }
  ms.sort((a, b) => a - b);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!.toFixed(2);
  console.log(`  ${label.padEnd(58)} median ${at(0.5)} ms, p95 ${at(0.95)} ms`);
}

async function measure(label: string, url: string): Promise<void> {
  const db = createDb(url);
  await migrate(db);
  const repos = new Repositories(db);
  const now = Date.now();
  await repos.users.insert({
    id: 'u1',
    username: 'load',
    password_hash: 'x',
    is_admin: false,
    created_at: now,
  });
  const rows: FileRow[] = [];
  let parent = '';
  for (let d = 0; d < DEPTH; d++) {
    rows.push(row(`d${d}`, parent, `level ${d}`, 'folder', now));
    parent = `d${d}`;
  }
  rows.push(row('big', '', 'big', 'folder', now));
  for (let i = 0; i < BIG_FOLDER; i++) rows.push(row(`b${i}`, 'big', `file-${i}.dat`, 'file', now));
  for (let i = 0; i < rows.length; i += 500) await db('user_files').insert(rows.slice(i, i + 500));
  console.log(`${label}: ${rows.length} rows`);

  const deepest = `d${DEPTH - 1}`;
  await time(`add a file ${DEPTH} folders deep (insert + counters)`, (i) =>
    repos.transaction((tx) => tx.files.insert(row(`deep${i}`, deepest, `deep-${i}`, 'file', now))),
  );
  await time(`add a file ${DEPTH} folders deep, plain insert (no counters)`, (i) =>
    db('user_files').insert(row(`plain${i}`, deepest, `plain-${i}`, 'file', now)),
  );
  await time(`add a file to the folder of ${BIG_FOLDER} (insert + counters)`, (i) =>
    repos.transaction((tx) => tx.files.insert(row(`new${i}`, 'big', `new-${i}`, 'file', now))),
  );
  await time(`rename a file in the folder of ${BIG_FOLDER} (update + counters)`, (i) =>
    repos.files.update(`b${i}`, { name: `renamed-${i}`, live_name: `renamed-${i}` }),
  );
  await time(`move a file between two folders ${DEPTH} deep and at the root (both chains)`, (i) =>
    repos.files.update(`deep${i}`, { parent_id: 'big' }),
  );
  await db.destroy();
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-counters-'));
try {
  if (process.argv.includes('--mariadb')) {
    const maria = await startMariaDb();
    try {
      await measure('MariaDB', (await createTestDatabase(maria.url)).url);
    } finally {
      await maria.stop();
    }
  } else {
    await measure('SQLite', `sqlite://${path.join(dir, 'measure.db')}`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
