import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminMain } from '../../src/admin/cli.ts';
import { type AppInstance, buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createDb } from '../../src/db/knex.ts';
import { migrationSource } from '../../src/db/migrations.ts';
import { collect } from '../../src/jobs/maintenance.ts';
import { readContents, readManifest } from '../../src/services/operations/backup/manifest.ts';
import { BackupSchedule } from '../../src/services/operations/backup/schedule.ts';
import { takeBackup } from '../../src/services/operations/backup/take.ts';
import { objectKey } from '../../src/storage/types.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { chunksOf, random, sha1 } from '../support/bytes.ts';
import { testDatabaseUrl } from '../support/db.ts';
import { type Entry, treeClient } from '../support/tree.ts';
import { RELEASE_FIXTURE, readDataset } from '../support/upgrade-fixture.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

const mysql = process.env.DFS_TEST_DB === 'mysql';
const PASSWORD = 'correct horse battery';

/**
 * `dfs admin backup | restore | verify` through the command's own entry (`adminMain`), with the
 * server's settings in the environment as an operator's shell would have them, beside a live app
 * that keeps writing.
 */
describe('backup and restore', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let backupRoot: string;
  let backupDir: string;
  const savedEnv = { ...process.env };
  const cleanups: Array<() => Promise<unknown>> = [];
  /** name → sha1 of every file alice has, as the live app answered. */
  const live = new Map<string, string>();
  const docs = new Map<string, { sha1: string; mtime: number }>();
  let docsId: string;

  const { api, folder, list } = treeClient(
    () => t,
    () => alice,
  );
  const nodeDir = () => path.join(t.dataDir, 'nodes', 'local');

  /** Runs `dfs admin …`; stdout and stderr as the operator would see them. */
  async function admin(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const write = { out: process.stdout.write, err: process.stderr.write };
    process.stdout.write = ((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    }) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string | Uint8Array) => {
      err += String(chunk);
      return true;
    }) as typeof process.stderr.write;
    try {
      return { code: await adminMain(argv), out, err };
    } finally {
      process.stdout.write = write.out;
      process.stderr.write = write.err;
    }
  }

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK), DFS_BACKUP_KEEP_DAYS: '30' });
    alice = await t.user('alice', PASSWORD);
    backupRoot = await mkdtemp(path.join(os.tmpdir(), 'dfs-backups-'));
    // The server's settings, as `dfs admin` reads them on the server's host.
    Object.assign(process.env, {
      DFS_DATA_DIR: t.dataDir,
      DFS_DB_URL: t.config.dbUrl,
      DFS_NODES: `local://${nodeDir()}`,
      DFS_LOG_LEVEL: 'silent',
      DFS_MIN_FREE_BYTES: '0',
      DFS_CHUNK_SIZE: String(CHUNK),
    });
  });
  afterAll(async () => {
    process.env = savedEnv;
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await t.close();
    await rm(backupRoot, { recursive: true, force: true });
  });

  it('takes a consistent backup while 20 uploads run; a new instance on it serves every file it lists', async () => {
    const docsFolder = await folder('Docs');
    docsId = docsFolder.id;
    const up = uploader(t, alice.headers);
    for (const [i, name] of ['a.txt', 'b.bin', 'kept.bin', 'lost.bin', 'gone.bin'].entries()) {
      const data = random(3000 + i);
      const mtime = Date.parse('2025-01-02T03:04:05Z') + i * 1000;
      await up.upload(data, name, docsId, { mtime: new Date(mtime).toISOString() });
      docs.set(name, { sha1: sha1(data), mtime });
      live.set(`Docs/${name}`, sha1(data));
    }
    // 20 uploads, each with its first chunk in: five finish before the backup starts, ten while
    // it runs, five after it.
    const pending = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const data = random(CHUNK + i + 1);
        const created = await up.create({ name: `up-${i}.bin`, size: data.length, sha1: sha1(data) });
        expect(created.statusCode, created.body).toBe(201);
        const { uploadId } = created.json() as { uploadId: string };
        expect((await up.put(uploadId, 0, chunksOf(data, CHUNK)[0] as Buffer)).statusCode).toBe(204);
        return { name: `up-${i}.bin`, data, uploadId };
      }),
    );
    const finish = async ({ name, data, uploadId }: (typeof pending)[number]) => {
      const chunks = chunksOf(data, CHUNK);
      for (let i = 1; i < chunks.length; i++) {
        expect((await up.put(uploadId, i, chunks[i] as Buffer)).statusCode).toBe(204);
      }
      const done = await up.complete(uploadId);
      expect(done.statusCode, done.body).toBe(201);
      live.set(name, sha1(data));
    };
    await Promise.all(pending.slice(0, 5).map(finish));
    const [backup] = await Promise.all([
      admin('backup', backupRoot),
      Promise.all(pending.slice(5, 15).map(finish)),
    ]);
    await Promise.all(pending.slice(15).map(finish));
    expect(backup.code, backup.err).toBe(0);
    backupDir = backup.out.trim();
    expect(path.dirname(backupDir)).toBe(backupRoot);
    expect(path.basename(backupDir)).toMatch(/^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z$/);

    expect((await readdir(backupDir)).sort()).toEqual(
      ['contents.jsonl', mysql ? 'dfs.sql' : 'dfs.sqlite', 'manifest.json', 'secret'].sort(),
    );
    const manifest = await readManifest(backupDir);
    expect(manifest).toMatchObject({ format: 1, db: mysql ? 'mysql' : 'sqlite', secret: 'file' });
    expect(manifest.schema).toMatch(/^\d{3}_/);
    expect((await stat(path.join(backupDir, 'secret'))).mode & 0o777).toBe(0o600);
    const listed = new Set<string>();
    for await (const content of readContents(backupDir)) {
      listed.add(content.sha1);
      expect(content.replicas).toEqual([{ node: expect.stringContaining(nodeDir()), state: 'ok' }]);
    }
    expect(listed.size).toBe(manifest.contents);
    const row = (await t.app.services.repos.backups.list()).find((b) => b.dir === backupDir);
    expect(row).toMatchObject({ status: 'complete', kind: 'manual', contents: manifest.contents });

    // A new instance: the restored metadata, the same node.
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'dfs-restored-'));
    await rm(dataDir, { recursive: true });
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    let dbUrl: string | undefined;
    const args = ['restore', backupDir, '--data-dir', dataDir];
    if (mysql) {
      const target = await testDatabaseUrl();
      cleanups.push(() => target.drop());
      dbUrl = target.url;
      args.push('--db-url', dbUrl);
    }
    const restored = await admin(...args);
    expect(restored.code, restored.err).toBe(0);
    // A target that is not empty is refused.
    expect((await admin(...args)).code).toBe(2);

    const second: AppInstance = await buildApp(
      loadConfig({
        DFS_DATA_DIR: dataDir,
        ...(dbUrl ? { DFS_DB_URL: dbUrl } : {}),
        DFS_NODES: `local://${nodeDir()}`,
        DFS_LOG_LEVEL: 'silent',
        DFS_MIN_FREE_BYTES: '0',
      }),
    );
    cleanups.push(() => second.close());
    // The password works: the secret that peppers its hash came along.
    const signin = await second.inject({
      method: 'POST',
      url: '/api/auth/signin',
      payload: { username: 'alice', password: PASSWORD },
    });
    expect(signin.statusCode, signin.body).toBe(200);
    const headers = { authorization: `Bearer ${signin.json().token}` };
    const there = treeClient(
      () => ({ app: second }) as unknown as TestApp,
      () => ({ headers }),
    );
    const files = Object.entries(await there.tree()).filter(([, hash]) => hash !== null);
    for (const [name, hash] of files) {
      expect(live.get(name), name).toBe(hash);
      expect(listed.has(hash as string), name).toBe(true);
      const id = await idOf(there.list, name);
      const res = await second.inject({ url: `/api/files/${id}/content`, headers });
      expect(res.statusCode, name).toBe(200);
      expect(sha1(res.rawPayload), name).toBe(hash);
    }
    const names = new Set(files.map(([name]) => name));
    for (const name of docs.keys()) expect(names.has(`Docs/${name}`)).toBe(true);
    for (const { name } of pending.slice(0, 5)) expect(names.has(name)).toBe(true);
    // Completed after the backup: absent, not broken (those completed meanwhile may be either).
    for (const { name } of pending.slice(15)) expect(names.has(name)).toBe(false);
  });

  it('keeps a content deleted after a young backup from the collector, until the backup is old', async () => {
    const content = await t.app.services.repos.contents.findBySha1(docs.get('kept.bin')?.sha1 as string);
    const before = await list(docsId);
    const kept = before.find((e) => e.name === 'kept.bin') as Entry;
    expect((await api('DELETE', `/api/files/${kept.id}`)).statusCode).toBe(204);
    expect((await api('DELETE', `/api/trash/${kept.id}`)).statusCode).toBe(204);
    // Made and deleted after the backup: no backup lists it, so the grace period alone holds it.
    const up = uploader(t, alice.headers);
    const later = await up.upload(random(777), 'later.bin');
    expect((await api('DELETE', `/api/files/${later.id}`)).statusCode).toBe(204);
    expect((await api('DELETE', `/api/trash/${later.id}`)).statusCode).toBe(204);

    const deps = (at: number) => ({
      repos: t.app.services.repos,
      cluster: t.app.services.cluster,
      log: t.app.log,
      now: () => at,
      gcGraceMs: t.config.gcGraceMs,
      backupKeepMs: t.config.backup.keepMs,
    });
    const afterGrace = Date.now() + t.config.gcGraceMs + 60_000;
    expect(await collect(deps(afterGrace))).toBe(1);
    expect(existsSync(path.join(nodeDir(), objectKey(later.sha1)))).toBe(false);
    expect(await t.app.services.repos.contents.findById(content?.id as string)).toBeDefined();
    expect(existsSync(path.join(nodeDir(), objectKey(content?.sha1 as string)))).toBe(true);
    // Once the backup is older than DFS_BACKUP_KEEP_DAYS, the content goes.
    const takenAt = (await readManifest(backupDir)).takenAt;
    expect(await collect(deps(takenAt + t.config.backup.keepMs + 60_000))).toBe(1);
    expect(await t.app.services.repos.contents.findById(content?.id as string)).toBeUndefined();
    expect(existsSync(path.join(nodeDir(), objectKey(content?.sha1 as string)))).toBe(false);
  });

  it('restores one folder of a user into the live instance, re-registering a content the database lost', async () => {
    const { repos } = t.app.services;
    // lost.bin: the live database no longer knows its content, its bytes are still on the node.
    // gone.bin: neither the database nor the node has it any more.
    for (const name of ['lost.bin', 'gone.bin']) {
      const entry = (await list(docsId)).find((e) => e.name === name) as Entry;
      expect((await api('DELETE', `/api/files/${entry.id}`)).statusCode).toBe(204);
      expect((await api('DELETE', `/api/trash/${entry.id}`)).statusCode).toBe(204);
      // Its replicas and block table go with it (ON DELETE CASCADE).
      await repos.contents.delete((await repos.contents.findBySha1(entry.sha1 as string))?.id as string);
    }
    await unlink(path.join(nodeDir(), objectKey(docs.get('gone.bin')?.sha1 as string)));

    const res = await admin('restore', backupDir, '--user', 'alice', '--path', '/Docs');
    // gone.bin is reported and left out, so the command says not everything came back.
    expect(res.code, res.err).toBe(1);
    expect(res.err).toContain('skipped /gone.bin');
    const name = res.out.trim().slice(1);
    expect(name).toMatch(/^Restored Docs \d{4}-\d\d-\d\d \d\d\.\d\d\.\d\d$/);
    const top = (await list()).find((e) => e.name === name) as Entry;
    expect(top?.kind).toBe('folder');
    const restored = await list(top.id);
    expect(Object.fromEntries(restored.map((e) => [e.name, e.sha1]))).toEqual(
      Object.fromEntries(
        [...docs].filter(([n]) => n !== 'gone.bin' && n !== 'kept.bin').map(([n, d]) => [n, d.sha1]),
      ),
    );
    for (const entry of restored) {
      const res = await api('GET', `/api/files/${entry.id}/content`);
      expect(sha1(res.rawPayload)).toBe(entry.sha1);
      expect((entry as Entry & { mtime?: string }).mtime).toBe(
        new Date(docs.get(entry.name)?.mtime as number).toISOString(),
      );
    }
    // The content registered again has its replica and is referenced.
    const lost = await repos.contents.findBySha1(docs.get('lost.bin')?.sha1 as string);
    expect(lost).toMatchObject({ state: 'ready', unreferenced_since: null });
    expect(await repos.contents.replicasOf(lost?.id as string)).toHaveLength(1);
    // The folder's counters came along through the services.
    const summary = await api('GET', `/api/files/${top.id}/summary`);
    expect(summary.json()).toEqual({
      files: restored.length,
      folders: 0,
      bytes: restored.reduce((sum, e) => sum + e.size, 0),
    });
  });

  it('verify reads every replica the manifest lists and reports damaged and missing ones', async () => {
    // kept.bin was collected and gone.bin's object deleted above: two missing. Now damage one.
    const listed: string[] = [];
    for await (const content of readContents(backupDir)) listed.push(content.sha1);
    const corrupt = docs.get('a.txt')?.sha1 as string;
    const file = path.join(nodeDir(), objectKey(corrupt));
    const bytes = await readFile(file);
    bytes[100] = (bytes[100] as number) ^ 0xff;
    await chmod(file, 0o644);
    await writeFile(file, bytes);

    const res = await admin('verify', backupDir);
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/verify: \d+\/\d+ contents, .* read, .*\/s/);
    const missing = [docs.get('kept.bin')?.sha1, docs.get('gone.bin')?.sha1];
    expect(res.out).toContain(`contents: ${listed.length} `);
    expect(res.out).toMatch(/replicas: \d+ ok, 2 missing, 1 corrupt, 0 unreachable/);
    for (const hash of missing) expect(res.out).toContain(`missing ${hash} on local:`);
    expect(res.out).toContain(`corrupt ${corrupt} on local:`);
  });

  it('scheduled: one instance takes each run, old scheduled backups are pruned, failures are recorded', async () => {
    const dir = path.join(backupRoot, 'scheduled');
    let clock = Date.now();
    const keepMs = 86400_000;
    // Two app instances on one database: each keeps the timer, one takes the run.
    const instance = (backupDir = dir) =>
      new BackupSchedule({
        db: t.app.services.db,
        repos: t.app.services.repos,
        config: { ...t.config, backup: { dir: backupDir, cron: '0 3 * * *', keepMs } },
        log: t.app.log,
        now: () => clock,
        audit: t.app.services.audit,
      });
    const [a, b] = [instance(), instance()];
    const first = await a.runOnce();
    expect(first?.dir).toMatch(new RegExp(`^${dir}/`));
    expect(await b.runOnce()).toBeNull();
    expect(await t.app.services.repos.backups.get(first?.id as string)).toMatchObject({
      kind: 'scheduled',
      status: 'complete',
    });

    clock += keepMs + 3600_000;
    const second = await b.runOnce();
    expect(second?.dir).not.toBe(first?.dir);
    expect(existsSync(first?.dir as string)).toBe(false);
    expect(existsSync(second?.dir as string)).toBe(true);
    expect((await t.app.services.repos.backups.get(first?.id as string))?.status).toBe('pruned');

    // A backup folder that cannot be made: the run fails, and the audit log says so.
    const blocker = path.join(dir, 'not-a-folder');
    await writeFile(blocker, '');
    clock += 86400_000;
    await expect(instance(path.join(blocker, 'x')).runOnce()).rejects.toThrow();
    const actions = await t.app.services.db('audit_events').orderBy('id').pluck('action');
    expect(actions.filter((action: string) => /^backup\.(created|failed)$/.test(action))).toEqual([
      'backup.created',
      'backup.created',
      'backup.failed',
    ]);
  });

  it('lists a content that lost its last reference between the snapshot and the manifest', async () => {
    const data = random(1234);
    const file = await uploader(t, alice.headers).upload(data, 'brief.bin');
    const result = await takeBackup({
      config: t.config,
      db: t.app.services.db,
      dir: path.join(backupRoot, 'gap'),
      kind: 'manual',
      // On MariaDB the manifest cannot share the dump's transaction: it is read after it.
      afterSnapshot: async () => {
        expect((await api('DELETE', `/api/files/${file.id}`)).statusCode).toBe(204);
        expect((await api('DELETE', `/api/trash/${file.id}`)).statusCode).toBe(204);
        // A backup still running keeps what it may list, however long it takes.
        const late = Date.now() + 2 * t.config.backup.keepMs;
        const deps = { ...t.app.services.clusterJobs.deps, now: () => late, gcGraceMs: 0, backupKeepMs: 1 };
        expect(await collect(deps)).toBe(0);
      },
    });
    const listed: string[] = [];
    for await (const content of readContents(result.dir)) listed.push(content.sha1);
    expect(listed).toContain(sha1(data));
  });

  it('restores a backup an older release took, then runs the migrations it lacks', async () => {
    const dataset = await readDataset();
    const dir = path.join(backupRoot, 'older');
    await mkdir(dir);
    if (mysql) await copyFile(path.join(RELEASE_FIXTURE, 'mariadb.sql'), path.join(dir, 'dfs.sql'));
    else {
      const db = new Database(path.join(dir, 'dfs.sqlite'));
      db.exec(await readFile(path.join(RELEASE_FIXTURE, 'sqlite.sql'), 'utf8'));
      db.close();
    }
    await copyFile(path.join(RELEASE_FIXTURE, 'secret'), path.join(dir, 'secret'));
    await writeFile(path.join(dir, 'contents.jsonl'), '');
    const run = dataset.runs[mysql ? 'mariadb' : 'sqlite'];
    await writeFile(
      path.join(dir, 'manifest.json'),
      JSON.stringify({
        format: 1,
        schema: run.migrations.at(-1),
        db: mysql ? 'mysql' : 'sqlite',
        takenAt: Date.now(),
        id: randomUUID(),
        secret: 'file',
        contents: 0,
        bytes: 0,
      }),
    );
    const dataDir = path.join(backupRoot, 'older-restored');
    const args = ['restore', dir, '--data-dir', dataDir];
    let url = `sqlite://${path.join(dataDir, 'dfs.sqlite')}`;
    if (mysql) {
      const target = await testDatabaseUrl();
      cleanups.push(() => target.drop());
      url = target.url;
      args.push('--db-url', url);
    }
    const res = await admin(...args);
    expect(res.code, res.err).toBe(0);
    expect(res.err).toMatch(/running \d+ migration\(s\): .*038_backups/);
    const db = createDb(url);
    try {
      const [, pending] = (await db.migrate.list({ migrationSource })) as [unknown, unknown[]];
      expect(pending).toEqual([]);
      const users = await db('users').orderBy('username').pluck('username');
      expect(users).toEqual(dataset.users.map((u) => u.username).sort());
    } finally {
      await db.destroy();
    }
  });
});

async function idOf(list: (parentId?: string) => Promise<Entry[]>, filePath: string): Promise<string> {
  let parent: string | undefined;
  let entry: Entry | undefined;
  for (const part of filePath.split('/')) {
    entry = (await list(parent)).find((e) => e.name === part);
    parent = entry?.id;
  }
  return entry?.id as string;
}
