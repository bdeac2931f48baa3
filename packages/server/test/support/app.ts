import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { type AppInstance, type BuildOptions, buildApp } from '../../src/app.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { testDatabaseUrl } from './db.ts';

export interface TestApp {
  app: AppInstance;
  config: Config;
  dataDir: string;
  /** Signs up (the first account is the admin) and signs in; returns a bearer header. */
  user(
    name?: string,
    password?: string,
  ): Promise<{ id: string; token: string; headers: Record<string, string> }>;
  /** A new app password of the user behind `headers` (what programs sign in with). */
  appPassword(headers: Record<string, string>, name?: string): Promise<string>;
  close(): Promise<void>;
}

let counter = 0;

/**
 * A real app on the suite's database (SQLite or MariaDB, from DFS_TEST_DB) with its own data
 * directory and local storage node(s); requests go through `app.inject` (no sockets needed).
 */
export async function startTestApp(
  env: Record<string, string> = {},
  options: Pick<BuildOptions, 'now' | 'davLimits' | 'restoreInlineEntries'> & { web?: string } = {},
): Promise<TestApp> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'dfs-test-app-'));
  const database = await testDatabaseUrl({ migrated: true });
  const config = loadConfig({
    DFS_DATA_DIR: dataDir,
    DFS_DB_URL: database.url,
    DFS_LOG_LEVEL: process.env.DFS_TEST_LOG_LEVEL ?? 'silent',
    DFS_SIGNIN_RATE_LIMIT: '1000',
    DFS_SIGNUP_RATE_LIMIT: '1000',
    // Suites do not depend on the host's free disk; the free-space test sets its own reserve.
    DFS_MIN_FREE_BYTES: '0',
    ...env,
  });
  const app = await buildApp(config, { logger: { level: config.logLevel }, ...options });
  return {
    app,
    config,
    dataDir,
    async user(name = `user${++counter}`, password = 'correct horse battery') {
      const signup = await app.inject({
        method: 'POST',
        url: '/api/auth/signup',
        payload: { username: name, password },
      });
      if (signup.statusCode !== 201) throw new Error(`signup failed: ${signup.body}`);
      const signin = await app.inject({
        method: 'POST',
        url: '/api/auth/signin',
        payload: { username: name, password },
      });
      const { token, user } = signin.json() as { token: string; user: { id: string } };
      return { id: user.id, token, headers: { authorization: `Bearer ${token}` } };
    },
    async appPassword(headers, name = 'test') {
      const res = await app.inject({
        method: 'POST',
        url: '/api/auth/app-passwords',
        headers,
        payload: { name },
      });
      if (res.statusCode !== 201) throw new Error(`app password failed: ${res.body}`);
      return (res.json() as { secret: string }).secret;
    },
    async close() {
      await app.close();
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function errorCode(res: LightMyRequestResponse): string | undefined {
  return (res.json() as { error?: { code?: string } }).error?.code;
}
