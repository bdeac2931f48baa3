import { startMariaDb } from '@dfs/cluster/mariadb';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A server URL without a database; `testDatabaseUrl()` makes one database per caller. */
    mariadbUrl: string;
  }
}

/**
 * One MariaDB for the whole `mariadb` project; each test file gets its own database on it. Set
 * DFS_TEST_MYSQL_URL (`mysql://user:pass@host:port`, a user allowed to CREATE DATABASE) to run
 * against a server you already have, such as MySQL 8.4, instead.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.DFS_TEST_MYSQL_URL;
  if (external) {
    project.provide('mariadbUrl', external);
    return async () => {};
  }
  const started = Date.now();
  const server = await startMariaDb();
  if (process.env.DFS_TEST_VERBOSE) console.log(`[mariadb] ready in ${Date.now() - started} ms`);
  project.provide('mariadbUrl', server.url);
  return () => server.stop();
}
