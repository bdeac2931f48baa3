import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@dfs/cluster/ports';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface DfsServer {
  base: string;
  /** Stops the server and removes its data directory (kept with DFS_E2E_KEEP_DATA=1). */
  stop(): Promise<void>;
}

/**
 * The real dfs server as production runs it (the bundle `pnpm start` and the Docker image run), on
 * a free port with a throwaway data directory, answering `/readyz` when this resolves. The
 * first account (the admin) is signed up here, so tests' own sign-ups are ordinary users.
 */
export async function startDfsServer(options: {
  env: Record<string, string>;
  dataDirPrefix: string;
  admin: { username: string; password: string };
  /** The port to listen on (a free one when absent): for settings that must name its URL first. */
  port?: number;
}): Promise<DfsServer> {
  const dataDir = mkdtempSync(path.join(tmpdir(), options.dataDirPrefix));
  const port = options.port ?? (await freePort());
  const base = `http://127.0.0.1:${port}`;
  let output = '';
  const server = spawn(process.execPath, ['--enable-source-maps', 'packages/server/dist/main.js'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DFS_PORT: String(port),
      DFS_HOST: '127.0.0.1',
      DFS_DATA_DIR: dataDir,
      DFS_LOG_LEVEL: 'warn',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (b: Buffer) => {
    output = (output + b.toString()).slice(-20_000);
  };
  server.stdout?.on('data', keep);
  server.stderr?.on('data', keep);
  const stop = async () => {
    if (server.exitCode === null) {
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
    }
    if (process.env.DFS_E2E_KEEP_DATA !== '1') rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (server.exitCode !== null) throw new Error(`dfs server exited with ${server.exitCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`dfs server not ready after 60 s:\n${output}`);
      const ready = await fetch(`${base}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const res = await fetch(`${base}/api/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(options.admin),
    });
    if (res.status !== 201) throw new Error(`admin sign-up failed: ${res.status} ${await res.text()}`);
  } catch (err) {
    // Playwright runs no teardown when setup throws: don't leave a server behind.
    await stop();
    throw err;
  }
  return { base, stop };
}
