/**
 * 11. The server as production starts it (`node dist/main.js`, the bundle) against the sources
 * through tsx: time from `node` starting to /readyz answering on a fresh data directory (SQLite
 * migrations, a local node, the web app), and RSS after 3 s idle. The CLI's start-up is row 2's.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from '@dfs/cluster/ports';
import { REPO_ROOT } from '../lib/app.ts';
import { addRow } from '../lib/report.ts';
import { currentRss, sleep } from '../lib/util.ts';

const ENTRIES = {
  bundle: ['--enable-source-maps', path.join(REPO_ROOT, 'packages/server/dist/main.js')],
  tsx: ['--import', 'tsx', path.join(REPO_ROOT, 'packages/server/src/main.ts')],
} as const;

async function startOnce(tmp: string, how: keyof typeof ENTRIES): Promise<{ readyMs: number; rss: number }> {
  const dir = await mkdtemp(path.join(tmp, `startup-${how}-`));
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, [...ENTRIES[how]], {
    cwd: REPO_ROOT,
    env: { ...process.env, DFS_PORT: String(port), DFS_DATA_DIR: dir, DFS_LOG_LEVEL: 'warn' },
    stdio: 'ignore',
  });
  const deadline = started + 60_000;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`the ${how} server exited during start`);
      if (performance.now() > deadline) throw new Error(`the ${how} server was not ready within 60 s`);
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      await sleep(10);
    }
    const readyMs = performance.now() - started;
    await sleep(3000);
    return { readyMs, rss: currentRss(child.pid!) };
  } finally {
    // A server that already exited emits no second 'exit': waiting for one would hang the bench.
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  }
}

export async function benchStartup(o: { tmp: string; runs: number }): Promise<void> {
  const results = {
    bundle: [] as { readyMs: number; rss: number }[],
    tsx: [] as { readyMs: number; rss: number }[],
  };
  for (let r = 0; r < o.runs; r++) {
    console.error(`bench: server start-up, run ${r + 1}/${o.runs}`);
    for (const how of ['bundle', 'tsx'] as const) results[how].push(await startOnce(o.tmp, how));
  }
  addRow({
    group: '11 start-up',
    what: 'server start → /readyz, fresh data dir (`node dist/main.js`, the bundle)',
    unit: 'ms',
    values: results.bundle.map((x) => x.readyMs),
    alt: { name: 'the sources through tsx', values: results.tsx.map((x) => x.readyMs) },
  });
  addRow({
    group: '11 start-up',
    what: 'server RSS after 3 s idle (the bundle)',
    unit: 'MB',
    values: results.bundle.map((x) => x.rss / 1e6),
    alt: { name: 'the sources through tsx', values: results.tsx.map((x) => x.rss / 1e6) },
  });
}
