import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import type { Config } from '../../../config.ts';
import { type Db, dialectOf, mysqlConnectionOf, sqliteFileOf } from '../../../db/knex.ts';
import { BackupsRepository } from '../../../repositories/backups.ts';
import { newId } from '../../ids.ts';
import {
  BACKUP_FORMAT,
  type BackupManifest,
  CONTENTS_FILE,
  DUMP_FILE,
  folderName,
  MANIFEST_FILE,
  type ManifestContent,
  SECRET_FILE,
  SQLITE_FILE,
} from './manifest.ts';
import { dumpDatabase } from './mysql-client.ts';

export interface TakeBackupOptions {
  config: Pick<Config, 'dbUrl' | 'dataDir' | 'secret'>;
  /** The live database (the backup's row goes there). */
  db: Db;
  /** The folder the dated backup folder is made in. */
  dir: string;
  kind: 'manual' | 'scheduled';
  now?: () => number;
  /** A line of progress (the command prints it on stderr, the schedule logs it). */
  progress?: (line: string) => void;
  /**
   * Runs between the snapshot and the manifest's read: what the app may do in that gap (the
   * suite uses it to prove the manifest still covers everything the snapshot references).
   */
  afterSnapshot?: () => Promise<void>;
}

export interface BackupResult {
  id: string;
  dir: string;
  takenAt: number;
  contents: number;
  bytes: number;
}

/**
 * Every content a snapshot references, with its replicas, in id order (one row per replica; a
 * content without any has one row of nulls). Besides what a file or a version references, it
 * lists what lost its last reference at or after `taken_at`: on MariaDB this is read after the
 * dump (see `mysqlManifest`), and a content the dump references may have lost it in between.
 */
const MANIFEST_SQL = `
SELECT c.id AS id, c.sha1 AS sha1, c.size AS size, c.root AS root, c.sha256 AS sha256,
       n.name AS node, r.state AS state
FROM contents c
LEFT JOIN replicas r ON r.content_id = c.id
LEFT JOIN nodes n ON n.id = r.node_id
WHERE c.state = 'ready'
  AND (c.unreferenced_since IS NULL
       OR c.unreferenced_since >= ?
       OR EXISTS (SELECT 1 FROM user_files f WHERE f.content_id = c.id)
       OR EXISTS (SELECT 1 FROM file_versions v WHERE v.content_id = c.id))
ORDER BY c.id`;

const SCHEMA_SQL = 'SELECT name FROM knex_migrations ORDER BY id DESC LIMIT 1';

interface ManifestRow {
  id: string;
  sha1: string;
  size: number | string;
  root: string | null;
  sha256: string;
  node: string | null;
  state: ManifestContent['replicas'][number]['state'] | null;
}

/**
 * `dfs admin backup` and the scheduled backup: a consistent snapshot of the metadata, the secret
 * and the manifest of the contents it references, into `<dir>/<UTC time>/`. Everything is written
 * into a hidden tmp folder first and renamed into place once complete, so a crash never leaves a
 * folder that looks like a whole backup. The row in `backups` is written before the snapshot
 * starts: from then on the collector keeps what the backup may list.
 */
export async function takeBackup(options: TakeBackupOptions): Promise<BackupResult> {
  const now = options.now ?? Date.now;
  const progress = options.progress ?? (() => {});
  const kind = dialectOf(options.config.dbUrl);
  const repo = new BackupsRepository(options.db);
  const id = newId();
  const takenAt = now();
  const parent = path.resolve(options.dir);
  const finalDir = path.join(parent, folderName(takenAt));
  const tmpDir = path.join(parent, `.tmp-${folderName(takenAt)}-${id.slice(0, 8)}`);
  await mkdir(parent, { recursive: true });
  await repo.insert({
    id,
    taken_at: takenAt,
    finished_at: null,
    dir: finalDir,
    kind: options.kind,
    db_kind: kind,
    status: 'running',
    contents: null,
    bytes: null,
    error: null,
  });
  try {
    await mkdir(tmpDir, { mode: 0o700 });
    let schema: string;
    let counts: { contents: number; bytes: number };
    const contentsFile = path.join(tmpDir, CONTENTS_FILE);
    if (kind === 'sqlite') {
      const file = path.join(tmpDir, SQLITE_FILE);
      progress('copying the SQLite database (online backup)');
      await sqliteSnapshot(sqlitePath(options.config.dbUrl), file);
      await options.afterSnapshot?.();
      // The manifest comes from the copy itself: exactly the snapshot, whatever the app did since.
      const copy = new Database(file, { readonly: true, fileMustExist: true });
      try {
        schema = (copy.prepare(SCHEMA_SQL).get() as { name: string }).name;
        counts = await writeContents(
          contentsFile,
          copy.prepare(MANIFEST_SQL).iterate(takenAt) as Iterable<ManifestRow>,
          progress,
        );
      } finally {
        copy.close();
      }
    } else {
      progress('dumping the database (single transaction)');
      await dumpDatabase(mysqlConnectionOf(options.config.dbUrl), path.join(tmpDir, DUMP_FILE));
      await options.afterSnapshot?.();
      ({ schema, counts } = await mysqlManifest(options.db, takenAt, contentsFile, progress));
    }
    const secret = await copySecret(options.config, tmpDir);
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      schema,
      db: kind,
      takenAt,
      id,
      secret,
      contents: counts.contents,
      bytes: counts.bytes,
    };
    await writeDurably(path.join(tmpDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    await rename(tmpDir, finalDir);
    await syncDir(parent);
    await repo.finish(id, { status: 'complete', finishedAt: now(), ...counts });
    progress(`done: ${counts.contents} contents, ${counts.bytes} bytes referenced`);
    return { id, dir: finalDir, takenAt, ...counts };
  } catch (error) {
    await rm(tmpDir, { recursive: true, force: true });
    await repo
      .finish(id, { status: 'failed', finishedAt: now(), error: (error as Error).message })
      .catch(() => undefined);
    throw error;
  }
}

export function sqlitePath(dbUrl: string): string {
  return path.resolve(sqliteFileOf(dbUrl));
}

/**
 * SQLite's online backup API on a connection of our own, beside the app's: the copy is one
 * consistent state of the database (WAL included). Pages go over in steps so the source is not
 * held for the whole copy; a write by the app between two steps restarts the copy, so once that
 * happens the rest goes in a single step (one read transaction, which no write can restart).
 */
async function sqliteSnapshot(source: string, target: string): Promise<void> {
  const db = new Database(source, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 10000');
    let lastRemaining = Number.POSITIVE_INFINITY;
    let restarted = false;
    await db.backup(target, {
      progress: ({ remainingPages }) => {
        if (remainingPages > lastRemaining) restarted = true;
        lastRemaining = remainingPages;
        return restarted ? 0x7fffffff : 1024;
      },
    });
  } finally {
    db.close();
  }
  // The copy says WAL like its source; a rollback journal makes it one self-contained file that
  // opens read-only anywhere (the restored app turns WAL on again).
  const copy = new Database(target, { fileMustExist: true });
  try {
    copy.pragma('journal_mode = DELETE');
  } finally {
    copy.close();
  }
  await chmod(target, 0o600);
}

/**
 * MariaDB/MySQL: the dump runs in its own transaction, which no other client can share, so the
 * manifest cannot be read from the dump's snapshot itself. It is read from a later one, a single
 * statement (one InnoDB read view) that starts after the dump's snapshot. What the dump references
 * is in it: a content referenced in the dump's snapshot either still is, or lost its last reference
 * after `taken_at` (the row was written before the dump started), and the collector keeps exactly
 * those while this backup runs (`keptByBackup` in repositories/contents.ts), so the statement
 * lists them by `unreferenced_since >= taken_at`. Contents created after the dump are listed too:
 * harmless, their bytes are kept the same way.
 */
async function mysqlManifest(
  db: Db,
  takenAt: number,
  file: string,
  progress: (line: string) => void,
): Promise<{ schema: string; counts: { contents: number; bytes: number } }> {
  const [schemaRows] = (await db.raw(SCHEMA_SQL)) as [Array<{ name: string }>];
  const schema = schemaRows[0]?.name ?? '';
  const stream = db.raw(MANIFEST_SQL, [takenAt]).stream() as unknown as Readable;
  const counts = await writeContents(file, stream as AsyncIterable<ManifestRow>, progress);
  return { schema, counts };
}

/** Groups the rows (ordered by content) into one JSON line per content, with backpressure. */
async function writeContents(
  file: string,
  rows: Iterable<ManifestRow> | AsyncIterable<ManifestRow>,
  progress: (line: string) => void,
): Promise<{ contents: number; bytes: number }> {
  const out = createWriteStream(file, { mode: 0o600 });
  let current = null as { id: string; line: ManifestContent } | null;
  let contents = 0;
  let bytes = 0;
  let lastReport = Date.now();
  const emit = async () => {
    if (!current) return;
    contents++;
    bytes += current.line.size;
    if (!out.write(`${JSON.stringify(current.line)}\n`)) await once(out, 'drain');
    if (Date.now() - lastReport >= 1000) {
      lastReport = Date.now();
      progress(`manifest: ${contents} contents`);
    }
  };
  try {
    for await (const row of rows) {
      if (current?.id !== row.id) {
        await emit();
        current = {
          id: row.id,
          line: {
            sha1: row.sha1,
            size: Number(row.size),
            root: row.root,
            sha256: row.sha256 ?? '',
            replicas: [],
          },
        };
      }
      if (row.node && row.state) current.line.replicas.push({ node: row.node, state: row.state });
    }
    await emit();
  } finally {
    out.end();
    await once(out, 'close');
  }
  const handle = await open(file, 'r');
  await handle.sync().finally(() => handle.close());
  return { contents, bytes };
}

/** Share passwords and MACs are keyed by the secret: a restore without it loses them. */
async function copySecret(config: Pick<Config, 'dataDir' | 'secret'>, dir: string): Promise<'file' | 'env'> {
  if (config.secret) return 'env';
  await copyFile(path.join(config.dataDir, 'secret'), path.join(dir, SECRET_FILE));
  await chmod(path.join(dir, SECRET_FILE), 0o600);
  return 'file';
}

/** The rename itself survives a power cut once the folder holding it is synced (best effort). */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => null);
  await handle
    ?.sync()
    .catch(() => undefined)
    .finally(() => handle.close());
}

async function writeDurably(file: string, text: string): Promise<void> {
  await writeFile(file, text, { mode: 0o600 });
  const handle = await open(file, 'r');
  await handle.sync().finally(() => handle.close());
}
