/**
 * How listing, counting and search behave at 100k files for one user, on SQLite and MariaDB:
 *   node --import tsx packages/server/scripts/measure-listing.ts
 * Prints the median and p95 of each query over 30 runs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase, startMariaDb } from '@dfs/cluster/mariadb';
import { createDb, migrate } from '../src/db/knex.ts';
import { Repositories } from '../src/repositories/index.ts';

const FILES = 100_000;
const BIG_FOLDER = 10_000;

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
  await repos.users.insert({
    id: 'u2',
    username: 'other',
    password_hash: 'x',
    is_admin: false,
    created_at: now,
  });
  const folders = Array.from({ length: 100 }, (_, i) => `folder-${i}`);
  const rows = [];
  for (const [i, id] of folders.entries()) rows.push(row(id, 'u1', '', `dir ${i}`, 'folder', now));
  for (let i = 0; i < FILES; i++) {
    // One folder holds 10k entries; the rest spread over the others and the root.
    const parent = i < BIG_FOLDER ? 'folder-0' : i % 3 === 0 ? '' : (folders[i % 100] as string);
    rows.push(row(`f${i}`, 'u1', parent, `${i % 7 === 0 ? 'report' : 'photo'}-${i}.dat`, 'file', now + i));
  }
  for (let i = 0; i < 20_000; i++) rows.push(row(`o${i}`, 'u2', '', `report-${i}.dat`, 'file', now + i));
  const started = performance.now();
  for (let i = 0; i < rows.length; i += 500) await db('user_files').insert(rows.slice(i, i + 500));
  console.log(
    `${label}: inserted ${rows.length} rows in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );

  const page = { limit: 50, offset: 0 };
  const queries: Array<[string, () => Promise<unknown>]> = [
    [
      'root, sort=name, 50 of ~30k',
      () => repos.files.list('u1', { parentId: '' }, { sort: 'name', order: 'asc', ...page }),
    ],
    [
      '10k folder, sort=size desc, 50',
      () => repos.files.list('u1', { parentId: 'folder-0' }, { sort: 'size', order: 'desc', ...page }),
    ],
    [
      '10k folder, page at offset 9000',
      () =>
        repos.files.list(
          'u1',
          { parentId: 'folder-0' },
          { sort: 'name', order: 'asc', limit: 50, offset: 9000 },
        ),
    ],
    [
      'recent 20 (sort=createdAt desc)',
      () =>
        repos.files.list('u1', { parentId: '' }, { sort: 'createdAt', order: 'desc', limit: 20, offset: 0 }),
    ],
    [
      'search "report-99" across 100k',
      () => repos.files.list('u1', { query: 'report-99' }, { sort: 'name', order: 'asc', ...page }),
    ],
  ];
  for (const [name, run] of queries) {
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      await run();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const at = (q: number) =>
      (times[Math.min(times.length - 1, Math.floor(q * times.length))] as number).toFixed(1);
    console.log(`| ${label} | ${name} | ${at(0.5)} ms | ${at(0.95)} ms |`);
  }
  await db.destroy();
}

function row(id: string, user: string, parent: string, name: string, kind: 'file' | 'folder', at: number) {
  return {
    id,
    user_id: user,
    parent_id: parent,
    kind,
    name,
    live_name: name,
    content_id: null,
    size: kind === 'file' ? (at * 7919) % 10_000_000 : 0,
    mime: null,
    status: 'active',
    trash_root_id: null,
    trashed_at: null,
    created_at: at,
    updated_at: at,
  };
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-listing-'));
try {
  console.log('| database | query | median | p95 |\n|---|---|---|---|');
  await measure('SQLite', `sqlite://${path.join(dir, 'dfs.sqlite')}`);
  const maria = await startMariaDb();
  try {
    const database = await createTestDatabase(maria.url);
    await measure('MariaDB', database.url);
  } finally {
    await maria.stop();
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
