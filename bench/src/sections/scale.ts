/**
 * 14. A million files. MariaDB is seeded with bulk inserts (the API would take hours): U users of
 * F files each, and one account of `folders` × `perFolder` files (1,000 × 1,000 and 100 × 10,000
 * in a full run). Every seeded row is a copy of a row the app made itself (one real content, with
 * its replica), so the rows are what the app would have written. Then, against the same request
 * where the data is small (the alternative a user compares with: dfs before they had a million
 * files), measured through the running app:
 * the first page of a big folder, a name search over the million, PROPFIND depth 1 of a big
 * folder through `/dav/` (time and the app's memory), `POST /api/uploads` (it checks the quota),
 * trash and restore of a 100,000-file subtree, the first byte of a ZIP of a big folder, and
 * `POST /api/uploads` under a 50-user load against the same load on an empty database.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import type { DfsApi } from '@dfs/client';
import { createTestDatabase, startMariaDb } from '@dfs/cluster/mariadb';
import mysql from 'mysql2/promise';
// The app's own function: the seeded index must hold exactly what the app would have written.
import { nameGrams } from '../../../packages/server/src/util/name-grams.ts';
import { type RunningApp, startApp } from '../lib/app.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { addFailure, addNote, addRow } from '../lib/report.ts';
import { currentRss, peakRss, percentile, resetPeakRss } from '../lib/util.ts';

export interface ScaleOptions {
  tmp: string;
  /** The big account: folders of `perFolder` files. */
  folders: number;
  perFolder: number;
  /** The crowd: users of `filesEach` files. */
  users: number;
  filesEach: number;
  /**
   * Requests per latency measurement. Enough that a p99 is not simply the slowest one: the first
   * request after the seed meets cold caches, and is reported on its own.
   */
  samples: number;
}

const INSERT_ROWS = 2000;
/** Name-index rows per INSERT: three short columns, so more rows per statement than files. */
const GRAM_ROWS = 10_000;
const LOAD_USERS = 50;
const LOAD_REQUESTS = 20;

/** The app's `oc:fileid` for a row id (util/file-ids.ts): rows written outside the app need it too. */
function numericFileId(rowId: string): string {
  const hex = createHash('sha1').update(rowId).digest('hex').slice(0, 16);
  return (BigInt(`0x${hex}`) & ((1n << 62n) - 1n)).toString();
}

type Row = Record<string, unknown>;

/**
 * The name index's rows of seeded files, made with the app's own function (util/name-grams.ts),
 * inserted in primary-key order (user, piece, file): a million files make about twelve million
 * rows, and in any other order every statement lands on pages all over the index. The index on
 * `file_id` and its foreign key are dropped while the seed runs and built again after, sorted,
 * by the database (see `withoutFileIdIndex`).
 */
async function indexNames(sql: mysql.Connection, files: Array<{ id: string; userId: string; name: string }>) {
  const byUser = new Map<string, Map<string, string[]>>();
  for (const file of files) {
    let grams = byUser.get(file.userId);
    if (!grams) {
      grams = new Map();
      byUser.set(file.userId, grams);
    }
    for (const gram of nameGrams(file.name)) {
      const ids = grams.get(gram);
      if (ids) ids.push(file.id);
      else grams.set(gram, [file.id]);
    }
  }
  let batch: Array<[string, string, string]> = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await sql.query('INSERT INTO user_file_grams (user_id, gram, file_id) VALUES ?', [batch]);
    batch = [];
  };
  for (const userId of [...byUser.keys()].sort()) {
    const grams = byUser.get(userId)!;
    for (const gram of [...grams.keys()].sort()) {
      for (const id of grams.get(gram)!.sort()) {
        batch.push([userId, gram, id]);
        if (batch.length === GRAM_ROWS) await flush();
      }
    }
  }
  await flush();
}

/**
 * Runs the seed without user_file_grams' secondary index on `file_id` (and the foreign key that
 * needs it), then adds both back under their own names, as the migration made them: MariaDB
 * builds an index from sorted rows far faster than it takes twelve million random inserts into
 * one bigger than the buffer pool. The rows are copies of rows the app wrote, so the key's check
 * (off for the session meanwhile) has nothing to find.
 */
async function withoutFileIdIndex<T>(sql: mysql.Connection, seed: () => Promise<T>): Promise<T> {
  const [[fk]] = (await sql.query(
    `SELECT CONSTRAINT_NAME AS name FROM information_schema.REFERENTIAL_CONSTRAINTS
     WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'user_file_grams'`,
  )) as unknown as [Array<{ name: string }>];
  const [[index]] = (await sql.query(
    `SELECT INDEX_NAME AS name FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'user_file_grams' AND COLUMN_NAME = 'file_id' AND INDEX_NAME <> 'PRIMARY'`,
  )) as unknown as [Array<{ name: string }>];
  if (!fk || !index) throw new Error('user_file_grams has no file_id index and foreign key to set aside');
  await sql.query('SET SESSION foreign_key_checks = 0, unique_checks = 0');
  await sql.query(`ALTER TABLE user_file_grams DROP FOREIGN KEY \`${fk.name}\``);
  await sql.query(`ALTER TABLE user_file_grams DROP INDEX \`${index.name}\``);
  const result = await seed();
  const t = performance.now();
  await sql.query(
    `ALTER TABLE user_file_grams ADD INDEX \`${index.name}\` (file_id),
     ADD CONSTRAINT \`${fk.name}\` FOREIGN KEY (file_id) REFERENCES user_files (id) ON DELETE CASCADE`,
  );
  await sql.query('SET SESSION foreign_key_checks = 1, unique_checks = 1');
  console.error(
    `bench: the name index's file_id index built again in ${((performance.now() - t) / 1000).toFixed(0)} s`,
  );
  return result;
}

export async function benchScale(o: ScaleOptions): Promise<void> {
  const server = await startMariaDb({ bufferPoolMb: 1024 });
  onCleanup('mariadb', () => server.stop());
  const db = await createTestDatabase(server.url);
  const app = await startApp({
    dataDir: path.join(o.tmp, 'scale-app'),
    nodes: `local://${path.join(o.tmp, 'scale-node')}`,
    replicas: 1,
    dbUrl: db.url,
    // The big account holds a million files and its folders: past the default cap of entries.
    env: { DFS_MAX_FILES_PER_USER: String(2 * (o.folders * o.perFolder + o.users * o.filesEach)) },
  });
  const sql = await mysql.createConnection({ uri: db.url, multipleStatements: false });
  try {
    await app.user('scale-admin');
    const big = await app.user('million');
    const small = await app.user('few');
    const seeded = await withoutFileIdIndex(sql, () => seed(sql, big, small, o));
    await measure(app, sql, big, small, seeded, o);
    await loadAgainstEmpty(app, server.url, o);
  } catch (error) {
    addFailure(`14 scale: ${(error as Error).message}`);
  } finally {
    await sql.end();
    await app.stop();
  }
}

interface Seeded {
  bigFolderIds: string[];
  smallFolderId: string;
  crowd: string[];
  total: number;
}

/** Inserts rows in statements of INSERT_ROWS, columns as the template row has them. */
async function insertRows(sql: mysql.Connection, table: string, rows: Row[]): Promise<void> {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]!);
  const list = columns.map((c) => `\`${c}\``).join(', ');
  for (let i = 0; i < rows.length; i += INSERT_ROWS) {
    const batch = rows.slice(i, i + INSERT_ROWS).map((r) => columns.map((c) => r[c]));
    await sql.query(`INSERT INTO \`${table}\` (${list}) VALUES ?`, [batch]);
  }
}

/** `count` copies of the template file row in `parentId`, named file-00000.bin, …. */
function fileRows(template: Row, userId: string, parentId: string, count: number, at: number): Row[] {
  return Array.from({ length: count }, (_, i) => {
    const id = randomUUID();
    const name = `file-${String(i).padStart(5, '0')}.bin`;
    return {
      ...template,
      id,
      user_id: userId,
      parent_id: parentId,
      name,
      live_name: name,
      oc_fileid: numericFileId(id),
      created_at: at + i,
      updated_at: at + i,
      mtime: at + i,
      content_at: at + i,
      change_seq: 1,
    };
  });
}

async function seed(sql: mysql.Connection, big: DfsApi, small: DfsApi, o: ScaleOptions): Promise<Seeded> {
  const t0 = performance.now();
  // One real file: its content (with a replica on the node) is what every seeded row holds.
  const uploaded = await big.uploadBatch([{ blob: new Blob([randomBytes(1024)]), name: 'template.bin' }]);
  const templateId = uploaded.files[0]!.id;
  const [[template]] = (await sql.query('SELECT * FROM user_files WHERE id = ?', [
    templateId,
  ])) as unknown as [Row[]];
  if (!template) throw new Error('the template file row is missing');
  const size = Number(template.size);
  const [[bigUser]] = (await sql.query('SELECT * FROM users WHERE username = ?', ['million'])) as unknown as [
    Row[],
  ];
  const bigUserId = bigUser!.id as string;
  const at = Date.now() - 86_400_000;

  const bigFolderIds: string[] = [];
  const bigFiles: Array<{ id: string; userId: string; name: string }> = [];
  for (let f = 0; f < o.folders; f++) {
    const folder = (await big.createFolder(`folder-${String(f).padStart(3, '0')}`)).file;
    bigFolderIds.push(folder.id);
    const rows = fileRows(template, bigUserId, folder.id, o.perFolder, at);
    await insertRows(sql, 'user_files', rows);
    for (const r of rows) bigFiles.push({ id: r.id as string, userId: bigUserId, name: r.name as string });
    // What the app keeps up to date on every write: the folder's and the account's byte totals.
    await sql.query(
      'UPDATE user_files SET tree_bytes = tree_bytes + ?, change_seq = change_seq + 1 WHERE id = ?',
      [o.perFolder * size, folder.id],
    );
    if (f % 10 === 9) console.error(`bench: seeded ${(f + 1) * o.perFolder} files of the big account`);
  }
  await indexNames(sql, bigFiles);
  console.error(`bench: indexed the names of the big account's ${bigFiles.length} files`);
  bigFiles.length = 0;
  // And the account's quota counters (bytes and entries, live and trashed).
  await sql.query(
    'UPDATE users SET tree_bytes = tree_bytes + ?, tree_seq = tree_seq + 1, used_bytes = used_bytes + ?, entry_count = entry_count + ? WHERE id = ?',
    [o.folders * o.perFolder * size, o.folders * o.perFolder * size, o.folders * o.perFolder, bigUserId],
  );

  // A folder of 100 files in a small account: the same requests where the data is small.
  const smallFolder = (await small.createFolder('folder-small')).file;
  const [[smallUser]] = (await sql.query('SELECT * FROM users WHERE username = ?', ['few'])) as unknown as [
    Row[],
  ];
  const smallRows = fileRows(template, smallUser!.id as string, smallFolder.id, 100, at);
  await insertRows(sql, 'user_files', smallRows);
  await indexNames(
    sql,
    smallRows.map((r) => ({ id: r.id as string, userId: r.user_id as string, name: r.name as string })),
  );
  await sql.query('UPDATE user_files SET tree_bytes = ? WHERE id = ?', [100 * size, smallFolder.id]);
  await sql.query(
    'UPDATE users SET tree_bytes = tree_bytes + ?, used_bytes = used_bytes + ?, entry_count = entry_count + 100 WHERE id = ?',
    [100 * size, 100 * size, smallUser!.id],
  );

  // The crowd: users whose rows copy the small account's (same password), each with a flat folder.
  const crowd: string[] = [];
  const crowdUsers: Row[] = [];
  for (let u = 0; u < o.users; u++) {
    const username = `crowd-${String(u).padStart(4, '0')}`;
    crowd.push(username);
    crowdUsers.push({
      ...smallUser,
      id: randomUUID(),
      username,
      created_at: at,
      tree_bytes: o.filesEach * size,
      used_bytes: o.filesEach * size,
      entry_count: o.filesEach,
    });
  }
  await insertRows(sql, 'users', crowdUsers);
  for (let u = 0; u < crowdUsers.length; u += 50) {
    const rows = crowdUsers
      .slice(u, u + 50)
      .flatMap((user) => fileRows(template, user.id as string, '', o.filesEach, at));
    await insertRows(sql, 'user_files', rows);
    await indexNames(
      sql,
      rows.map((r) => ({ id: r.id as string, userId: r.user_id as string, name: r.name as string })),
    );
  }
  // The counters the quota check reads must say what a sum says, or the figures mean nothing.
  const [[counted]] = (await sql.query(
    'SELECT u.used_bytes AS counter, (SELECT SUM(size) FROM user_files WHERE user_id = u.id) AS summed FROM users u WHERE u.id = ?',
    [bigUserId],
  )) as unknown as [Array<{ counter: unknown; summed: unknown }>];
  if (Number(counted!.counter) !== Number(counted!.summed))
    addFailure(
      `14 scale: the big account's byte counter is ${counted!.counter}, its files sum to ${counted!.summed}`,
    );
  const total = o.folders * o.perFolder + 100 + o.users * o.filesEach;
  const seconds = (performance.now() - t0) / 1000;
  addNote(
    `14 scale: seeded ${total.toLocaleString('en')} file rows (${o.folders} × ${o.perFolder.toLocaleString('en')} in one account, ` +
      `${o.users.toLocaleString('en')} users × ${o.filesEach.toLocaleString('en')}) in ${seconds.toFixed(0)} s with multi-row INSERTs`,
  );
  return { bigFolderIds, smallFolderId: smallFolder.id, crowd, total };
}

/** Per-request latencies (ms) of `samples` sequential calls. */
/** `after` runs untimed once each call is measured (to undo what it made). */
async function latencies<T>(
  samples: number,
  call: (i: number) => Promise<T>,
  after?: (result: T) => Promise<unknown>,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    const result = await call(i);
    out.push(performance.now() - t);
    await after?.(result);
  }
  return out;
}

function p99Row(what: string, values: number[], altName: string, alt: number[], target?: string): void {
  addRow({
    group: '14 a million files',
    what: `${what}, p99`,
    unit: 'ms',
    values: [percentile(values, 99)],
    alt: { name: altName, values: [percentile(alt, 99)] },
    higherIsBetter: false,
    ...(target ? { note: target } : {}),
  });
  addNote(
    `14 scale: ${what}: p50 ${percentile(values, 50).toFixed(1)} ms, p99 ${percentile(values, 99).toFixed(1)} ms ` +
      `of ${values.length}, the first (cold) ${values[0]!.toFixed(1)} ms ` +
      `(${altName}: p50 ${percentile(alt, 50).toFixed(1)} ms, p99 ${percentile(alt, 99).toFixed(1)} ms)`,
  );
}

async function measure(
  app: RunningApp,
  sql: mysql.Connection,
  big: DfsApi,
  small: DfsApi,
  seeded: Seeded,
  o: ScaleOptions,
): Promise<void> {
  const bigFolder = seeded.bigFolderIds[Math.floor(seeded.bigFolderIds.length / 2)]!;
  const count = `${o.perFolder.toLocaleString('en')}-file`;

  // The first page of a big folder, as the web app asks for it.
  const page = await latencies(o.samples, () => big.listFiles({ parentId: bigFolder, limit: 100 }));
  const smallPage = await latencies(o.samples, () =>
    small.listFiles({ parentId: seeded.smallFolderId, limit: 100 }),
  );
  p99Row(`first page (100) of a ${count} folder`, page, 'a 100-file folder', smallPage, 'target ≤ 50 ms');

  // A name search over the whole big account.
  const search = await latencies(o.samples, (i) =>
    big.listFiles({ q: `file-0${String(i % 10)}123`, limit: 100 }),
  );
  const smallSearch = await latencies(o.samples, (i) =>
    small.listFiles({ q: `file-0${String(i % 10)}12`, limit: 100 }),
  );
  p99Row(
    `name search over ${(o.folders * o.perFolder).toLocaleString('en')} files`,
    search,
    'over 100 files',
    smallSearch,
    'target ≤ 300 ms',
  );

  // PROPFIND depth 1 of a big folder through /dav/, and what it costs the app's memory.
  const { secret } = await big.createAppPassword('bench dav');
  const basic = `Basic ${Buffer.from(`million:${secret}`).toString('base64')}`;
  const propfind = async (folderName: string, auth: string, user: string) => {
    const res = await fetch(`${app.url}/dav/${folderName}/`, {
      method: 'PROPFIND',
      headers: { authorization: auth, depth: '1' },
    });
    const body = await res.text();
    if (res.status !== 207) throw new Error(`PROPFIND as ${user} answered ${res.status}`);
    return body.length;
  };
  const bigFolderName = `folder-${String(Math.floor(seeded.bigFolderIds.length / 2)).padStart(3, '0')}`;
  const rssBefore = currentRss(app.pid);
  resetPeakRss(app.pid);
  const dav = await latencies(3, () => propfind(bigFolderName, basic, 'million'));
  const rssGrowth = (peakRss(app.pid) - rssBefore) / 1e6;
  const smallSecret = (await small.createAppPassword('bench dav')).secret;
  const smallBasic = `Basic ${Buffer.from(`few:${smallSecret}`).toString('base64')}`;
  const smallDav = await latencies(3, () => propfind('folder-small', smallBasic, 'few'));
  addRow({
    group: '14 a million files',
    what: `PROPFIND depth 1 of a ${count} folder (/dav/), median`,
    unit: 'ms',
    values: dav,
    alt: { name: 'a 100-file folder', values: smallDav },
    higherIsBetter: false,
    note: 'target ≤ 1 s',
  });
  addRow({
    group: '14 a million files',
    what: `the app's peak RSS growth during that PROPFIND`,
    unit: 'MB',
    values: [rssGrowth],
    higherIsBetter: false,
    note: 'target ≤ 50 MB',
  });

  // Creating an upload checks the quota: in the big account, then in the small one.
  const create = (api: DfsApi, parentId: string) => (i: number) =>
    api.createUpload({ name: `new-${i}-${randomUUID()}.bin`, size: 1 << 20, parentId });
  // Each is aborted again (untimed): a user may have only so many unfinished uploads.
  const abort = (api: DfsApi) => async (res: Awaited<ReturnType<DfsApi['createUpload']>>) => {
    if ('uploadId' in res) await api.abortUpload(res.uploadId);
  };
  const bigCreate = await latencies(o.samples, create(big, bigFolder), abort(big));
  const smallCreate = await latencies(o.samples, create(small, seeded.smallFolderId), abort(small));
  p99Row(
    `POST /api/uploads (quota check) in the ${(o.folders * o.perFolder).toLocaleString('en')}-file account`,
    bigCreate,
    'in a 100-file account',
    smallCreate,
  );

  // The first byte of a ZIP of a big folder, and of the small one.
  const zipFirstByte = async (api: DfsApi, id: string) => {
    const archive = await api.createArchive({ ids: [id] });
    const t = performance.now();
    const res = await api.request(new URL(archive.url).pathname);
    const reader = res.body!.getReader();
    await reader.read();
    const ms = performance.now() - t;
    await reader.cancel();
    return ms;
  };
  const zip: number[] = [];
  const smallZip: number[] = [];
  for (let i = 0; i < 3; i++) {
    zip.push(await zipFirstByte(big, bigFolder));
    smallZip.push(await zipFirstByte(small, seeded.smallFolderId));
  }
  addRow({
    group: '14 a million files',
    what: `ZIP of a ${count} folder: request → first byte, median`,
    unit: 'ms',
    values: zip,
    alt: { name: 'of a 100-file folder', values: smallZip },
    higherIsBetter: false,
  });

  // Trash and restore a subtree of ten big folders.
  const subtreeFiles = Math.min(10, seeded.bigFolderIds.length) * o.perFolder;
  const holder = (await big.createFolder('subtree')).file;
  for (const id of seeded.bigFolderIds.slice(0, 10)) await big.updateFile(id, { parentId: holder.id });
  const t0 = performance.now();
  await big.deleteFile(holder.id);
  const trashMs = performance.now() - t0;
  const t1 = performance.now();
  await big.restoreFromTrash(holder.id);
  const restoreMs = performance.now() - t1;
  const [[live]] = (await sql.query(
    "SELECT COUNT(*) AS n FROM user_files WHERE parent_id IN (?) AND status = 'active'",
    [seeded.bigFolderIds.slice(0, 10)],
  )) as unknown as [Array<{ n: number }>];
  if (Number(live!.n) !== subtreeFiles)
    addFailure(`14 scale: ${live!.n} of ${subtreeFiles} files live after the subtree's restore`);
  addRow({
    group: '14 a million files',
    what: `trash a ${subtreeFiles.toLocaleString('en')}-file subtree`,
    unit: 's',
    values: [trashMs / 1000],
    higherIsBetter: false,
  });
  addRow({
    group: '14 a million files',
    what: `restore it from the trash`,
    unit: 's',
    values: [restoreMs / 1000],
    higherIsBetter: false,
  });
}

/** 50 users creating uploads at once: the seeded database against an empty one. */
async function loadAgainstEmpty(app: RunningApp, serverUrl: string, o: ScaleOptions): Promise<void> {
  const seededMs = await underLoad(app, 'crowd-');
  const empty = await createTestDatabase(serverUrl);
  const emptyApp = await startApp({
    dataDir: path.join(o.tmp, 'scale-empty-app'),
    nodes: `local://${path.join(o.tmp, 'scale-empty-node')}`,
    replicas: 1,
    dbUrl: empty.url,
  });
  try {
    await emptyApp.user('empty-admin');
    const emptyMs = await underLoad(emptyApp, 'load-');
    p99Row(
      `POST /api/uploads, ${LOAD_USERS} users at once, in the seeded database`,
      seededMs,
      'in an empty database',
      emptyMs,
      'target ≤ 1.2× empty',
    );
  } finally {
    await emptyApp.stop();
    await empty.drop();
  }
}

async function underLoad(app: RunningApp, prefix: string): Promise<number[]> {
  // Seeded crowd users share the small account's password; on the empty database they sign up.
  const apis = await Promise.all(
    Array.from({ length: LOAD_USERS }, (_, i) =>
      prefix === 'crowd-' ? app.signin(`crowd-${String(i).padStart(4, '0')}`) : app.user(`${prefix}${i}`),
    ),
  );
  const all: number[][] = await Promise.all(
    apis.map((api) =>
      latencies(LOAD_REQUESTS, (i) =>
        api.createUpload({ name: `load-${i}-${randomUUID()}.bin`, size: 1 << 20 }),
      ),
    ),
  );
  return all.flat();
}
