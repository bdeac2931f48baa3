import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppInstance, buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createDb } from '../../src/db/knex.ts';
import { migrationSource } from '../../src/db/migrations.ts';
import { sha1 } from '../support/bytes.ts';
import { testDatabaseUrl } from '../support/db.ts';
import {
  loadReleaseDump,
  RELEASE_FIXTURE,
  readDataset,
  seededBytes,
  type UpgradeDataset,
  type UpgradeRun,
} from '../support/upgrade-fixture.ts';

/**
 * An upgrade from the previous release (0.3.0) with data in it: its database as that release left
 * it (a dump it made, on this suite's database) and its node's objects, opened by the current app,
 * whose migrations run at start. Everything the release's users had must still work through the
 * API. The fixture is made by scripts/make-upgrade-fixture.ts.
 */
const mysqlSuite = process.env.DFS_TEST_DB === 'mysql';

let dataset: UpgradeDataset;
let fixtureRun: UpgradeRun;
let app: AppInstance;
let dataDir: string;
let drop: () => Promise<void>;
let pendingBefore: string[];
const tokens: Record<string, string> = {};

async function pending(url: string): Promise<string[]> {
  const db = createDb(url);
  try {
    const [, waiting] = (await db.migrate.list({ migrationSource })) as [unknown, Array<{ name: string }>];
    return waiting.map((m) => m.name);
  } finally {
    await db.destroy();
  }
}

beforeAll(async () => {
  dataset = await readDataset();
  fixtureRun = dataset.runs[mysqlSuite ? 'mariadb' : 'sqlite'];
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'dfs-upgrade-'));
  const nodeRoot = path.join(dataDir, 'nodes', 'local');
  for (const object of dataset.objects) {
    const file = path.join(nodeRoot, object.key);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, seededBytes(object.seed, object.size));
  }
  await writeFile(path.join(dataDir, 'secret'), await readFile(path.join(RELEASE_FIXTURE, 'secret')));

  const database = await testDatabaseUrl();
  drop = database.drop;
  await loadReleaseDump(database.url, nodeRoot);
  pendingBefore = await pending(database.url);

  const config = loadConfig({
    DFS_DATA_DIR: dataDir,
    DFS_DB_URL: database.url,
    DFS_LOG_LEVEL: 'silent',
    DFS_MIN_FREE_BYTES: '0',
    DFS_SIGNIN_RATE_LIMIT: '1000',
  });
  app = await buildApp(config, { logger: { level: 'silent' } });
  for (const user of dataset.users) {
    const res = await app.inject({
      method: 'POST',
      url: '/api/auth/signin',
      payload: { username: user.username, password: user.password },
    });
    expect(res.statusCode, `${user.username} signs in`).toBe(200);
    tokens[user.username] = (res.json() as { token: string }).token;
  }
});

afterAll(async () => {
  await app?.close();
  await drop?.();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const as = (username: string) => ({ authorization: `Bearer ${tokens[username]}` });
const idOf = (owner: string, filePath: string) => {
  const id = fixtureRun.ids[`${owner}:${filePath}`];
  if (!id) throw new Error(`no id for ${owner}:${filePath} in the fixture`);
  return id;
};

describe('upgrade from 0.3.0', () => {
  it('runs exactly the migrations the release did not have, and leaves none pending', async () => {
    const all = (await migrationSource.getMigrations([])).map((m) => migrationSource.getMigrationName(m));
    expect(fixtureRun.migrations).toEqual(all.slice(0, fixtureRun.migrations.length));
    expect(pendingBefore).toEqual(all.slice(fixtureRun.migrations.length));
    expect(pendingBefore.length).toBeGreaterThan(0);
    expect(await pending(app.config.dbUrl)).toEqual([]);
  });

  it('keeps the users, their admin, and their files: each lists and downloads with its SHA-1', async () => {
    const me = await app.inject({ url: '/api/auth/me', headers: as('alice') });
    expect(me.json().user).toMatchObject({ username: 'alice', isAdmin: true });
    for (const file of dataset.files) {
      const id = idOf(file.owner, file.path);
      const parent = path.posix.dirname(file.path);
      const query = parent === '.' ? '' : `?parentId=${idOf(file.owner, parent)}`;
      const list = await app.inject({ url: `/api/files${query}`, headers: as(file.owner) });
      expect(list.statusCode).toBe(200);
      const item = (
        list.json().items as Array<{ id: string; name: string; size: number; sha1: string }>
      ).find((entry) => entry.id === id);
      expect(item, file.path).toMatchObject({
        name: path.posix.basename(file.path),
        size: file.size,
        sha1: file.sha1,
      });
      const body = await app.inject({ url: `/api/files/${id}/content`, headers: as(file.owner) });
      expect(body.statusCode, file.path).toBe(200);
      expect(sha1(body.rawPayload), file.path).toBe(file.sha1);
    }
  });

  it('keeps a version history that lists, serves and restores', async () => {
    const { owner, path: filePath, versions } = dataset.versioned;
    const id = idOf(owner, filePath);
    const list = await app.inject({ url: `/api/files/${id}/versions`, headers: as(owner) });
    const items = list.json().items as Array<{ id: string; sha1: string; current: boolean }>;
    expect(items.map((v) => [v.sha1, v.current])).toEqual([
      [versions[1]!.sha1, true],
      [versions[0]!.sha1, false],
    ]);
    const old = items[1]!;
    const bytes = await app.inject({
      url: `/api/files/${id}/versions/${old.id}/content`,
      headers: as(owner),
    });
    expect(sha1(bytes.rawPayload)).toBe(versions[0]!.sha1);
    const restored = await app.inject({
      method: 'POST',
      url: `/api/files/${id}/versions/${old.id}/restore`,
      headers: as(owner),
    });
    expect(restored.statusCode).toBe(200);
    expect(restored.json().file.sha1).toBe(versions[0]!.sha1);
    const now = await app.inject({ url: `/api/files/${id}/content`, headers: as(owner) });
    expect(sha1(now.rawPayload)).toBe(versions[0]!.sha1);
  });

  it('keeps the trash', async () => {
    const trash = await app.inject({ url: '/api/trash', headers: as(dataset.trashed.owner) });
    const items = trash.json().items as Array<{ name: string; size: number }>;
    expect(items).toEqual([
      expect.objectContaining({ name: dataset.trashed.name, size: dataset.trashed.size }),
    ]);
  });

  it('opens the password link with its password only', async () => {
    const token = fixtureRun.linkToken;
    const info = await app.inject({ url: `/api/public/shares/${token}` });
    expect(info.json()).toMatchObject({ name: path.posix.basename(dataset.link.path), hasPassword: true });
    const refused = await app.inject({
      url: `/api/public/shares/${token}/content`,
      headers: { 'x-share-password': 'not the password' },
    });
    expect(refused.statusCode).toBe(403);
    const body = await app.inject({
      url: `/api/public/shares/${token}/content`,
      headers: { 'x-share-password': dataset.link.password },
    });
    expect(body.statusCode).toBe(200);
    expect(sha1(body.rawPayload)).toBe(dataset.files.find((f) => f.path === dataset.link.path)!.sha1);
  });

  it('shows the shared folder to the user and to the group member, who read its files', async () => {
    const { owner, folder, user, groupMember } = dataset.memberShare;
    const folderId = idOf(owner, folder);
    const inside = dataset.files.find((f) => f.owner === owner && f.path.startsWith(`${folder}/`))!;
    for (const reader of [user, groupMember]) {
      const shared = await app.inject({ url: '/api/shared-with-me', headers: as(reader) });
      expect(
        shared.json().items.map((item: { id: string }) => item.id),
        reader,
      ).toContain(folderId);
      const body = await app.inject({
        url: `/api/files/${idOf(owner, inside.path)}/content`,
        headers: as(reader),
      });
      expect(sha1(body.rawPayload), reader).toBe(inside.sha1);
    }
  });

  it("signs each user's app password in over WebDAV", async () => {
    const file = dataset.files.find((f) => f.owner === 'alice' && f.size > dataset.chunkSize)!;
    for (const user of dataset.users) {
      const basic = Buffer.from(`${user.username}:${fixtureRun.appPasswords[user.username]}`).toString(
        'base64',
      );
      const root = await app.inject({
        method: 'PROPFIND',
        url: '/dav/',
        headers: { authorization: `Basic ${basic}`, depth: '1' },
      });
      expect(root.statusCode, user.username).toBe(207);
    }
    const basic = Buffer.from(`alice:${fixtureRun.appPasswords.alice}`).toString('base64');
    const body = await app.inject({ url: `/dav/${file.path}`, headers: { authorization: `Basic ${basic}` } });
    expect(body.statusCode).toBe(200);
    expect(sha1(body.rawPayload)).toBe(file.sha1);
    const wrong = await app.inject({
      method: 'PROPFIND',
      url: '/dav/',
      headers: {
        authorization: `Basic ${Buffer.from('alice:wrong-app-password').toString('base64')}`,
        depth: '0',
      },
    });
    expect(wrong.statusCode).toBe(401);
  });
});
