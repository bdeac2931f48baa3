import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ServerProcess } from '@dfs/cluster/app-process';
import { WEB_TEST_PORT } from './server.ts';

/** One real server (SQLite, a local node) for the web project's tests. */
export default async function setup(): Promise<() => Promise<void>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-web-test-'));
  const server = new ServerProcess({
    DFS_PORT: String(WEB_TEST_PORT),
    DFS_DATA_DIR: dir,
    DFS_SIGNUP_RATE_LIMIT: '1000',
    DFS_SIGNIN_RATE_LIMIT: '1000',
    DFS_MIN_FREE_BYTES: '0',
    // A burst of a dozen changes makes an alert: the alert tests need no hundred files.
    DFS_MASS_CHANGE_FILES: '10',
  });
  await server.start();
  return async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
