import { execFileSync } from 'node:child_process';
import { ROOT, startDfsServer } from './dfs-server.ts';

/**
 * Builds the web app and the server bundle, then starts the real dfs server on a free port with a throwaway data
 * directory (SQLite + one local node) and a 1 MiB chunk size, so a 40 MiB file has 40 chunks.
 * The first account (the admin) is created here, so tests' own sign-ups are ordinary users.
 */
export default async function globalSetup(): Promise<() => Promise<void>> {
  if (process.env.DFS_E2E_SKIP_BUILD !== '1') {
    // What `pnpm start` builds: the web app when its sources changed, and the server bundle.
    execFileSync('pnpm', ['build'], { cwd: ROOT, stdio: 'inherit' });
  }
  const admin = { username: 'admin', password: 'admin-password-1' };
  const server = await startDfsServer({
    dataDirPrefix: 'dfs-e2e-',
    admin,
    env: {
      DFS_CHUNK_SIZE: String(1024 * 1024),
      DFS_HEARTBEAT_SECONDS: '2',
      DFS_SIGNIN_RATE_LIMIT: '200',
      // Every test signs up its own users from the same address.
      DFS_SIGNUP_RATE_LIMIT: '200',
    },
  });
  process.env.DFS_E2E_BASE_URL = server.base;
  process.env.DFS_E2E_ADMIN = JSON.stringify(admin);
  return server.stop;
}
