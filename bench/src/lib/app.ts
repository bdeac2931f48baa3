import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { DfsApi } from '@dfs/client';
import { nodeFetch } from '@dfs/client/node';
import { freePort } from '@dfs/cluster/ports';
import { onCleanup } from './cleanup.ts';
import { sleep } from './util.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');

const BENCH_PASSWORD = 'bench-password-1234';

export interface AppOptions {
  dataDir: string;
  nodes: string;
  replicas?: number;
  dbUrl?: string;
  env?: Record<string, string>;
}

export interface RunningApp {
  url: string;
  pid: number;
  /** Signs up (the first account is the admin) and signs in; a Bearer-token API for that user. */
  user(username: string, password?: string): Promise<DfsApi>;
  /** Signs in an account that exists already (one the bench wrote into the database itself). */
  signin(username: string, password?: string): Promise<DfsApi>;
  stop(): Promise<void>;
}

/** The dfs server as its own process, the way it runs in production: `node dist/main.js` (scripts/bench.sh builds it). */
export async function startApp(options: AppOptions): Promise<RunningApp> {
  await mkdir(options.dataDir, { recursive: true });
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DFS_PORT: String(port),
    DFS_HOST: '127.0.0.1',
    DFS_DATA_DIR: options.dataDir,
    DFS_NODES: options.nodes,
    DFS_REPLICAS: String(options.replicas ?? 1),
    DFS_LOG_LEVEL: 'warn',
    // The bench signs up and in many users from one address; background scrubbing would steal disk time.
    DFS_SIGNIN_RATE_LIMIT: '100000',
    DFS_SIGNUP_RATE_LIMIT: '100000',
    DFS_UPLOAD_LOOKUP_RATE_LIMIT: '100000',
    DFS_SCRUB_BYTES_PER_SECOND: '0',
    ...options.env,
  };
  // e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the server under the bench's load.
  const nodeArgs = (process.env.DFS_BENCH_APP_NODE_ARGS ?? '').split(' ').filter(Boolean);
  if (options.dbUrl) env.DFS_DB_URL = options.dbUrl;
  else delete env.DFS_DB_URL;
  const child: ChildProcess = spawn(
    process.execPath,
    [...nodeArgs, '--enable-source-maps', path.join(REPO_ROOT, 'packages/server/dist/main.js')],
    { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  // The app's warnings and errors also go to .bench/app-<port>.log, kept after the run: a section
  // that fails (a download cut short, say) is explained there.
  await mkdir(path.join(REPO_ROOT, '.bench'), { recursive: true });
  const logFile = createWriteStream(path.join(REPO_ROOT, '.bench', `app-${port}.log`));
  const keep = (d: Buffer) => {
    log = (log + d.toString()).slice(-8000);
    logFile.write(d);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(options.dataDir, { recursive: true, force: true });
      logFile.end();
    })();
    return stopped;
  };
  const unregister = onCleanup(`dfs app :${port}`, stop);

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await unregister();
      throw new Error(`the dfs app exited during start (${child.exitCode ?? child.signalCode}):\n${log}`);
    }
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await unregister();
      throw new Error(`the dfs app did not get ready within 60 s:\n${log}`);
    }
    await sleep(100);
  }

  const signin = async (username: string, password = BENCH_PASSWORD) => {
    const { token } = await new DfsApi({ baseUrl: url, credentials: 'omit' }).signin(username, password);
    // The CLI's transport: byte bodies through undici's request (see createNodeFetch).
    return new DfsApi({ baseUrl: url, token, credentials: 'omit', fetch: nodeFetch });
  };
  return {
    url,
    pid: child.pid!,
    async user(username, password = BENCH_PASSWORD) {
      await new DfsApi({ baseUrl: url, credentials: 'omit' }).signup(username, password);
      return signin(username, password);
    },
    signin,
    stop: unregister,
  };
}
