import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

async function waitReady(base: string, server: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`dfs server exited with ${server.exitCode}:\n${log()}`);
    try {
      const res = await fetch(`${base}/readyz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`dfs server not ready after 60 s:\n${log()}`);
}

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
  const dataDir = mkdtempSync(path.join(tmpdir(), 'dfs-e2e-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let output = '';
  // The server as production runs it: the bundle `pnpm start` and the Docker image run.
  const server = spawn(process.execPath, ['--enable-source-maps', 'packages/server/dist/main.js'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DFS_PORT: String(port),
      DFS_HOST: '127.0.0.1',
      DFS_DATA_DIR: dataDir,
      DFS_CHUNK_SIZE: String(1024 * 1024),
      DFS_HEARTBEAT_SECONDS: '2',
      DFS_SIGNIN_RATE_LIMIT: '200',
      // Every test signs up its own users from the same address.
      DFS_SIGNUP_RATE_LIMIT: '200',
      DFS_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (b: Buffer) => {
    output = (output + b.toString()).slice(-20_000);
  };
  server.stdout?.on('data', keep);
  server.stderr?.on('data', keep);
  const stop = async () => {
    if (server.exitCode !== null) return;
    server.kill('SIGTERM');
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        server.kill('SIGKILL');
        resolve();
      }, 5000);
      server.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  };
  const cleanup = async () => {
    await stop();
    if (process.env.DFS_E2E_KEEP_DATA !== '1') rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    await waitReady(base, server, () => output);
    const admin = { username: 'admin', password: 'admin-password-1' };
    const res = await fetch(`${base}/api/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(admin),
    });
    if (res.status !== 201) throw new Error(`admin sign-up failed: ${res.status} ${await res.text()}`);
    process.env.DFS_E2E_BASE_URL = base;
    process.env.DFS_E2E_ADMIN = JSON.stringify(admin);
  } catch (err) {
    // Playwright runs no teardown when setup throws: don't leave a server behind.
    await cleanup();
    throw err;
  }
  return cleanup;
}
