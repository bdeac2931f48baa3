import { randomBytes } from 'node:crypto';
import path from 'node:path';
import knexFactory from 'knex';
import type { AppInstance } from '../../../app.ts';
import { createDb, type Db, isUniqueViolation, mysqlConnectionOf } from '../../../db/knex.ts';
import { HttpError } from '../../../errors.ts';
import type { ContentRow } from '../../../repositories/contents.ts';
import { actingAs } from '../../actor.ts';
import { blockRoot } from '../../hashing/blocks.ts';
import { newId } from '../../ids.ts';
import { suffixedName } from '../../names.ts';
import { DUMP_FILE, displayTime, readManifest, SQLITE_FILE } from './manifest.ts';
import { loadDump } from './mysql-client.ts';
import { checkReplica } from './verify.ts';

/** The backup's tree root (user_files.parent_id of top-level entries). */
const ROOT = '';

export interface RestoreTreeOptions {
  dir: string;
  /** The live app (its services write the restored entries). */
  app: AppInstance;
  username: string;
  /** `/Some/Folder` in the backup; the user's whole tree when absent. */
  folder?: string;
  progress?: (line: string) => void;
}

export interface RestoreTreeResult {
  /** The new folder in the user's root. */
  folder: { id: string; name: string };
  files: number;
  folders: number;
  bytes: number;
  /** Contents re-registered from the backup because the live database no longer had them. */
  reregistered: number;
  skipped: Array<{ path: string; reason: string }>;
}

interface BackupFileRow {
  id: string;
  name: string;
  kind: 'file' | 'folder';
  content_id: string | null;
  mtime: number | string | null;
  updated_at: number | string;
}

/**
 * `dfs admin restore <dir> --user <name> [--path /Folder]`: the user's tree (or one folder of it)
 * as the backup has it, put into a new `Restored …` folder in the user's root of the LIVE instance
 * through its own services, so quota, counters, the name index and history stay right. A file's
 * content is the live one when the live database still has it; otherwise it is registered again
 * from the backup's record of it (SHA-1, size, the nodes of its replicas, the same record the
 * manifest holds) once a copy on one of those nodes verifies. A file whose bytes verify nowhere is
 * reported and left out.
 */
export async function restoreTree(options: RestoreTreeOptions): Promise<RestoreTreeResult> {
  const progress = options.progress ?? (() => {});
  const manifest = await readManifest(options.dir);
  const source = await openBackupDb(options.dir, manifest.db, options.app.config.dbUrl, progress);
  try {
    const result = await actingAs({ type: 'system', name: 'dfs admin restore', via: 'restore' }, () =>
      copyTree(options, source.db, manifest.takenAt, progress),
    );
    await options.app.services.audit.record({
      action: 'backup.restored',
      actor: null,
      target: { type: 'backup', id: manifest.id },
      details: {
        user: options.username,
        from: options.folder ?? '/',
        into: `/${result.folder.name}`,
        files: result.files,
        skipped: result.skipped.length,
      },
    });
    return result;
  } finally {
    await source.close();
  }
}

async function copyTree(
  options: RestoreTreeOptions,
  backup: Db,
  takenAt: number,
  progress: (line: string) => void,
): Promise<RestoreTreeResult> {
  const { services } = options.app;
  const live = await services.repos.users.findByUsername(options.username);
  if (!live) throw new HttpError('not_found', `no user "${options.username}" on this instance`);
  const then = await backup('users').where({ username: options.username }).first<{ id: string }>('id');
  if (!then) throw new HttpError('not_found', `the backup has no user "${options.username}"`);

  const segments = (options.folder ?? '/').split('/').filter(Boolean);
  let start = ROOT;
  for (const segment of segments) {
    const row = await backup('user_files')
      .where({ user_id: then.id, parent_id: start, name: segment, status: 'active' })
      .first<{ id: string; kind: string }>('id', 'kind');
    if (row?.kind !== 'folder') {
      throw new HttpError('not_found', `the backup has no folder ${options.folder} of "${options.username}"`);
    }
    start = row.id;
  }
  const label =
    segments.length > 0
      ? `Restored ${segments.at(-1)} ${displayTime(takenAt)}`
      : `Restored ${displayTime(takenAt)}`;
  const top = await newFolder(options.app, live.id, label);
  progress(`restoring into /${top.name}`);

  const result: RestoreTreeResult = {
    folder: top,
    files: 0,
    folders: 0,
    bytes: 0,
    reregistered: 0,
    skipped: [],
  };
  const nodeIds = new Map((await services.repos.nodes.list()).map((node) => [node.name, node.id]));
  const queue: Array<{ from: string; to: string; path: string }> = [{ from: start, to: top.id, path: '' }];
  while (queue.length > 0) {
    const folder = queue.shift() as (typeof queue)[number];
    // Keyset pages: a folder with a million entries is never read at once.
    for (let after = ''; ; ) {
      const rows = await backup('user_files')
        .where({ user_id: then.id, parent_id: folder.from, status: 'active' })
        .andWhere('id', '>', after)
        .orderBy('id')
        .limit(500)
        .select<BackupFileRow[]>('id', 'name', 'kind', 'content_id', 'mtime', 'updated_at');
      if (rows.length === 0) break;
      after = (rows.at(-1) as BackupFileRow).id;
      for (const row of rows) {
        const at = `${folder.path}/${row.name}`;
        if (row.kind === 'folder') {
          const made = await services.files.createFolder(live.id, row.name, folder.to);
          queue.push({ from: row.id, to: made.file.id, path: at });
          result.folders++;
          continue;
        }
        try {
          const content = await liveContent(options.app, backup, row.content_id as string, nodeIds, result);
          await services.files.addFileWithinLimits(
            {
              userId: live.id,
              parentId: folder.to,
              name: row.name,
              mtime: Number(row.mtime ?? row.updated_at),
            },
            content,
            'rename',
          );
          result.files++;
          result.bytes += Number(content.size);
        } catch (error) {
          if (!(error instanceof HttpError || error instanceof SkipFile)) throw error;
          result.skipped.push({ path: at, reason: error.message });
          progress(`skipped ${at}: ${error.message}`);
        }
      }
    }
  }
  return result;
}

class SkipFile extends Error {}

/** A folder of that name in the user's root, ` (2)` and on when one is there already. */
async function newFolder(
  app: AppInstance,
  userId: string,
  name: string,
): Promise<{ id: string; name: string }> {
  for (let n = 0; ; n++) {
    const candidate = n === 0 ? name : suffixedName(name, n + 1);
    try {
      const { file } = await app.services.files.createFolder(userId, candidate, null);
      return { id: file.id, name: file.name };
    } catch (error) {
      if (!(error instanceof HttpError && error.code === 'name_conflict') || n >= 50) throw error;
    }
  }
}

/**
 * The live content for a backup's content row: the same SHA-1 when the live database has it
 * ready, else registered again once one of the backup's recorded copies verifies.
 */
async function liveContent(
  app: AppInstance,
  backup: Db,
  contentId: string,
  nodeIds: Map<string, string>,
  result: RestoreTreeResult,
): Promise<Pick<ContentRow, 'id' | 'sha1' | 'size'>> {
  const { repos, cluster, now } = app.services;
  const then = await backup('contents').where({ id: contentId }).first<ContentRow>();
  if (!then) throw new SkipFile('the backup has no record of its content');
  const size = Number(then.size);
  const found = await repos.contents.findBySha1(then.sha1);
  if (found?.state === 'ready') return found;
  if (found) throw new SkipFile('its content is being deleted right now; run the restore again in a minute');
  const replicas = await backup('replicas')
    .join('nodes', 'nodes.id', 'replicas.node_id')
    .where({ content_id: contentId })
    .select<Array<{ name: string }>>('nodes.name as name');
  const good: string[] = [];
  let table: Awaited<ReturnType<typeof checkReplica>>['table'];
  for (const { name } of replicas) {
    const nodeId = nodeIds.get(name);
    const driver = nodeId ? cluster.driver(nodeId) : undefined;
    if (!nodeId || !driver) continue;
    const check = await checkReplica(driver, { sha1: then.sha1, size });
    if (check.verdict !== 'ok') continue;
    good.push(nodeId);
    table ??= check.table;
  }
  if (good.length === 0 || !table) {
    throw new SkipFile(`its content ${then.sha1} verifies on none of the nodes the backup lists`);
  }
  const row: ContentRow = {
    id: newId(),
    sha1: then.sha1,
    sha256: then.sha256 ?? '',
    root: blockRoot(table.hashes),
    size,
    state: 'ready',
    created_at: now(),
    // The file added next references it; until then it counts as unreferenced like any new content.
    unreferenced_since: now(),
  };
  try {
    await repos.transaction(async (tx) => {
      await tx.contents.insert(row);
      await tx.contentBlocks.save(row.id, table);
      await tx.contents.addReplicas(row.id, good, now());
    });
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    // Someone uploaded the same bytes meanwhile: theirs is as good.
    const raced = await repos.contents.findBySha1(then.sha1);
    if (raced?.state === 'ready') return raced;
    throw new SkipFile('its content is being deleted right now; run the restore again in a minute');
  }
  result.reregistered++;
  return row;
}

/**
 * The backup's metadata, readable with SQL: the SQLite copy opened read-only, or the dump loaded
 * into a scratch database beside the live one (dropped afterwards; the database user needs the
 * right to create and drop databases).
 */
async function openBackupDb(
  dir: string,
  kind: 'sqlite' | 'mysql',
  liveUrl: string,
  progress: (line: string) => void,
): Promise<{ db: Db; close(): Promise<void> }> {
  if (kind === 'sqlite') {
    const db = knexFactory({
      client: 'better-sqlite3',
      connection: { filename: path.join(dir, SQLITE_FILE), options: { readonly: true } },
      useNullAsDefault: true,
      pool: { min: 1, max: 1 },
    });
    return { db, close: () => db.destroy() };
  }
  if (!liveUrl.startsWith('mysql://')) {
    throw new Error('a MariaDB/MySQL backup is read through the MariaDB/MySQL server of DFS_DB_URL');
  }
  const server = new URL(liveUrl);
  const name = `${mysqlConnectionOf(liveUrl).database.slice(0, 40)}_restore_${randomBytes(4).toString('hex')}`;
  server.pathname = '/';
  const admin = createDb(server.toString());
  await admin.raw(`CREATE DATABASE \`${name.replace(/`/g, '``')}\` CHARACTER SET utf8mb4`);
  const drop = async () => {
    await admin.raw(`DROP DATABASE IF EXISTS \`${name.replace(/`/g, '``')}\``).catch(() => undefined);
    await admin.destroy();
  };
  const scratch = new URL(liveUrl);
  scratch.pathname = `/${encodeURIComponent(name)}`;
  try {
    progress(`loading the dump into the scratch database ${name}`);
    await loadDump(mysqlConnectionOf(scratch.toString()), path.join(dir, DUMP_FILE));
  } catch (error) {
    await drop();
    throw error;
  }
  const db = createDb(scratch.toString());
  return {
    db,
    close: async () => {
      await db.destroy();
      await drop();
    },
  };
}
