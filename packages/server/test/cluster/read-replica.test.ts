import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  createTestDatabase,
  type RunningMariaDb,
  startMariaDb,
  startReplication,
} from '@dfs/cluster/mariadb';
import type { LightMyRequestResponse } from 'fastify';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AppInstance, buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { TestApp } from '../support/app.ts';
import { uploader } from '../support/uploads.ts';

const MAX_LAG_SECONDS = 2;

/**
 * A real MariaDB primary and a GTID replica of it, with the app reading listings, file look-ups
 * and share look-ups from the replica (DFS_DB_READ_URL). `Server-Timing: db;desc=…` says which
 * database answered; stopping the replica's SQL thread makes it lag on demand.
 */
describe('read replica', () => {
  let primary: RunningMariaDb;
  let replica: RunningMariaDb;
  let app: AppInstance;
  let dataDir: string;
  let onReplica: mysql.Connection;
  let dbName: string;
  const tokens: Record<string, Record<string, string>> = {};

  const source = (res: LightMyRequestResponse) =>
    /db;desc="(\w+)"/.exec(String(res.headers['server-timing'] ?? ''))?.[1];
  const list = (user: string) => app.inject({ method: 'GET', url: '/api/files', headers: tokens[user] });
  const names = (res: LightMyRequestResponse) =>
    (res.json() as { items: { name: string }[] }).items.map((item) => item.name).sort();
  // `what` names the wait in the failure; vitest's waitUntil does the polling.
  const until = (what: string, check: () => Promise<boolean>, timeout = 8000) =>
    vi.waitUntil(check, { timeout, interval: 50 }).catch(() => {
      throw new Error(`timed out waiting until ${what}`);
    });

  beforeAll(async () => {
    [primary, replica] = await Promise.all([startMariaDb({ serverId: 1 }), startMariaDb({ serverId: 2 })]);
    await startReplication(primary, replica);
    const database = await createTestDatabase(primary.url);
    dbName = new URL(database.url).pathname.slice(1);
    const readUrl = new URL(replica.url);
    readUrl.pathname = `/${dbName}`;
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'dfs-replica-'));
    // The database reaches the replica through the binlog before the app first reads from it.
    onReplica = await mysql.createConnection({
      host: '127.0.0.1',
      port: replica.port,
      user: decodeURIComponent(readUrl.username),
      password: decodeURIComponent(readUrl.password),
    });
    const config = loadConfig({
      DFS_DATA_DIR: dataDir,
      DFS_DB_URL: database.url,
      DFS_DB_READ_URL: readUrl.toString(),
      DFS_DB_READ_MAX_LAG_SECONDS: String(MAX_LAG_SECONDS),
      DFS_LOG_LEVEL: process.env.DFS_TEST_LOG_LEVEL ?? 'silent',
      DFS_MIN_FREE_BYTES: '0',
      DFS_SIGNIN_RATE_LIMIT: '1000',
      DFS_SIGNUP_RATE_LIMIT: '1000',
    });
    app = await buildApp(config);
    for (const user of ['alice', 'bob']) {
      const body = { username: user, password: 'correct horse battery' };
      expect((await app.inject({ method: 'POST', url: '/api/auth/signup', payload: body })).statusCode).toBe(
        201,
      );
      const signin = await app.inject({ method: 'POST', url: '/api/auth/signin', payload: body });
      tokens[user] = { authorization: `Bearer ${(signin.json() as { token: string }).token}` };
    }
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await onReplica?.end();
    await Promise.all([replica?.stop(), primary?.stop()]);
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses a replica without a MySQL primary', () => {
    expect(() =>
      loadConfig({ DFS_DATA_DIR: dataDir, DFS_DB_READ_URL: replica.url, DFS_SECRET: 'x'.repeat(32) }),
    ).toThrow(/DFS_DB_READ_URL/);
  });

  it("reads a user's own writes at once, and from the replica once it has them", async () => {
    const made = await app.inject({
      method: 'POST',
      url: '/api/folders',
      headers: tokens.alice,
      payload: { name: 'fresh' },
    });
    expect(made.statusCode).toBe(201);
    // No wait: whichever database answers, the folder just made is in the listing.
    expect(names(await list('alice'))).toEqual(['fresh']);
    await until('alice reads from the replica', async () => source(await list('alice')) === 'replica');
    const fromReplica = await list('alice');
    expect(source(fromReplica)).toBe('replica');
    expect(names(fromReplica)).toEqual(['fresh']);
    const { file } = made.json() as { file: { id: string } };
    const one = await app.inject({ method: 'GET', url: `/api/files/${file.id}`, headers: tokens.alice });
    expect(one.statusCode).toBe(200);
    expect(source(one)).toBe('replica');
  });

  it('keeps a writer on the primary while the replica lags, and everyone once it lags past the bound', async () => {
    await until('bob reads from the replica', async () => source(await list('bob')) === 'replica');
    await onReplica.query('STOP SLAVE SQL_THREAD');
    try {
      const folder = (await list('alice')).json() as { items: { id: string }[] };
      const renamed = await app.inject({
        method: 'PATCH',
        url: `/api/files/${folder.items[0]!.id}`,
        headers: tokens.alice,
        payload: { name: 'renamed' },
      });
      expect(renamed.statusCode).toBe(200);
      // The replica cannot have the rename: alice's reads go to the primary and see it.
      const hers = await list('alice');
      expect(source(hers)).toBe('primary');
      expect(names(hers)).toEqual(['renamed']);

      // Past the lag bound nobody reads from the replica.
      await until(
        'bob falls back to the primary',
        async () => source(await list('bob')) === 'primary',
        MAX_LAG_SECONDS * 1000 + 3000,
      );
    } finally {
      await onReplica.query('START SLAVE SQL_THREAD');
    }
    await until('alice reads from the replica again', async () => source(await list('alice')) === 'replica');
    expect(names(await list('alice'))).toEqual(['renamed']);
  });

  it('answers a share look-up the replica does not know yet from the primary', async () => {
    const file = await uploader({ app } as TestApp, tokens.alice!).upload(
      Buffer.from('shared bytes'),
      'f.txt',
    );
    const lookUp = (token: string) => app.inject({ method: 'GET', url: `/api/public/shares/${token}` });
    await until(
      'anonymous look-ups use the replica',
      async () => source(await lookUp('no-such-link')) === 'replica',
    );
    await onReplica.query('STOP SLAVE SQL_THREAD');
    try {
      const made = await app.inject({
        method: 'POST',
        url: `/api/files/${file.id}/shares`,
        headers: tokens.alice,
        payload: {},
      });
      expect(made.statusCode).toBe(201);
      const { token } = (made.json() as { share: { token: string } }).share;
      const info = await lookUp(token);
      expect(source(info)).toBe('replica');
      expect(info.statusCode).toBe(200);
      expect((info.json() as { name: string }).name).toBe('f.txt');
      // The replica really does not have it: the primary answered.
      const [rows] = await onReplica.query(`SELECT token FROM \`${dbName}\`.shares WHERE token = ?`, [token]);
      expect(rows).toEqual([]);
    } finally {
      await onReplica.query('START SLAVE SQL_THREAD');
    }
  });

  it('reads from the primary, without an error, when the replica dies', async () => {
    await until('bob reads from the replica', async () => source(await list('bob')) === 'replica');
    await replica.kill();
    const res = await list('bob');
    expect(res.statusCode).toBe(200);
    expect(source(res)).toBe('primary');
    const again = await list('alice');
    expect(again.statusCode).toBe(200);
    expect(names(again)).toEqual(['f.txt', 'renamed']);
  });
});
