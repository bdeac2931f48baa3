/**
 * 8. Many small files through the web app: the built SPA (packages/web, `vite build`) served by
 * the dfs server, in Debian's Chromium (playwright-core), the way the e2e suite drives it: sign
 * in, open /files, set N generated files (1–50 KiB, fresh random content per run) on the file
 * picker's input. Timed in the page from the input's `change` event to the upload panel's
 * "N of N done"; every stored file's SHA-1 is checked against its source afterwards.
 * DFS_BENCH_WEB_PROFILE=<dir> writes the page's main-thread CPU profile of each run there
 * (open it in Chromium's DevTools, Performance → Load profile).
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Request } from 'playwright-core';
import { REPO_ROOT, startApp } from '../lib/app.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { addFailure, addNote, addRow } from '../lib/report.ts';
import { cpuSeconds, ioBytes, run } from '../lib/util.ts';

export interface WebOptions {
  tmp: string;
  files: number;
  runs: number;
}

const MIN = 1024;
const MAX = 50 * 1024;
const PASSWORD = 'bench-password-1234';

/** Which API requests the page sent, by route: shows the path the web app took per file. */
function requestKind(req: Request): string | null {
  const url = new URL(req.url());
  const m = req.method();
  const p = url.pathname;
  if (m === 'POST' && p === '/api/files') return 'POST /api/files';
  if (m === 'POST' && p === '/api/files/batch') return 'POST /api/files/batch';
  if (m === 'GET' && p === '/api/files') return 'GET /api/files (listing)';
  if (m === 'POST' && p === '/api/uploads') return 'POST /api/uploads';
  if (m === 'PUT' && /^\/api\/uploads\/[^/]+\/chunks\/\d+$/.test(p)) return 'PUT chunk';
  if (m === 'POST' && /^\/api\/uploads\/[^/]+\/complete$/.test(p)) return 'POST complete';
  if (p.startsWith('/api/')) return `${m} other`;
  return null;
}

export async function benchWeb(o: WebOptions): Promise<void> {
  if (process.env.DFS_BENCH_SKIP_WEB_BUILD !== '1') {
    console.error('bench: building the web app (pnpm --filter @dfs/web build)');
    const built = await run('pnpm', ['--filter', '@dfs/web', 'build'], { cwd: REPO_ROOT });
    addNote(
      `8 web app: \`pnpm --filter @dfs/web build\` took ${(built.ms / 1000).toFixed(1)} s (not timed below)`,
    );
  }
  const app = await startApp({
    dataDir: path.join(o.tmp, 'app-web'),
    nodes: `local://${path.join(o.tmp, 'node-web')}`,
    replicas: 1,
  });
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const closeBrowser = onCleanup('chromium (web app)', () => browser.close());
  const perSecond: number[] = [];
  const wallFromNode: number[] = [];
  try {
    for (let r = 0; r < o.runs; r++) {
      console.error(`bench: web app, ${o.files} small files, run ${r + 1}/${o.runs}`);
      // Fresh content every run: the same bytes again would be instant uploads.
      const dir = path.join(o.tmp, `web-files-${r}`);
      await mkdir(dir, { recursive: true });
      const expected = new Map<string, string>();
      const paths: string[] = [];
      let bytes = 0;
      for (let i = 0; i < o.files; i++) {
        const name = `s${r}-${String(i).padStart(4, '0')}.bin`;
        const content = randomBytes(randomInt(MIN, MAX + 1));
        bytes += content.length;
        expected.set(name, createHash('sha1').update(content).digest('hex'));
        const p = path.join(dir, name);
        await writeFile(p, content);
        paths.push(p);
      }

      const username = `web-r${r}`;
      const api = await app.user(username, PASSWORD);
      const context = await browser.newContext({
        baseURL: app.url,
        locale: 'en-US',
        viewport: { width: 1360, height: 860 },
      });
      try {
        const page = await context.newPage();
        page.on('pageerror', (error) => console.error('bench: web app page error:', error.message));
        const signin = await page.request.post('/api/auth/signin', {
          data: { username, password: PASSWORD },
        });
        if (signin.status() !== 200)
          throw new Error(`sign-in answered ${signin.status()}: ${await signin.text()}`);
        await page.goto('/files');
        await page.getByTestId('empty-state').waitFor({ state: 'visible', timeout: 30_000 });
        await page.evaluate(() => {
          const input = document.querySelector('[data-testid=upload-input]');
          if (!input) throw new Error('no upload-input');
          input.addEventListener(
            'change',
            () => {
              (window as unknown as { benchChangeAt: number }).benchChangeAt = performance.now();
            },
            { capture: true },
          );
        });
        const kinds = new Map<string, number>();
        page.on('request', (req) => {
          const k = requestKind(req);
          if (k) kinds.set(k, (kinds.get(k) ?? 0) + 1);
        });
        const profileDir = process.env.DFS_BENCH_WEB_PROFILE;
        const cdp = profileDir ? await context.newCDPSession(page) : null;
        if (cdp) {
          await cdp.send('Profiler.enable');
          await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
          await cdp.send('Profiler.start');
        }
        const cpu0 = cpuSeconds(app.pid);
        const io0 = ioBytes(app.pid).write;
        const t0 = performance.now();
        await page.getByTestId('upload-input').setInputFiles(paths);
        const outcome = await page.waitForFunction(
          (n) => {
            const text = document.querySelector('[data-testid=upload-totals]')?.textContent ?? '';
            if (text.startsWith(`${n} of ${n} done`)) {
              const w = window as unknown as { benchChangeAt: number };
              return { ok: true, ms: performance.now() - w.benchChangeAt, text };
            }
            if (/\d+ failed/.test(text)) return { ok: false, ms: 0, text };
            return false;
          },
          o.files,
          { polling: 20, timeout: 15 * 60_000 },
        );
        const result = (await outcome.jsonValue()) as { ok: boolean; ms: number; text: string };
        wallFromNode.push((performance.now() - t0) / 1000);
        if (cdp && profileDir) {
          const { profile } = await cdp.send('Profiler.stop');
          await mkdir(profileDir, { recursive: true });
          await writeFile(path.join(profileDir, `web-run-${r + 1}.cpuprofile`), JSON.stringify(profile));
        }
        if (!result.ok) return addFailure(`web app: uploads failed: ${result.text}`);
        const appCpu = cpuSeconds(app.pid) - cpu0;
        const written = ioBytes(app.pid).write - io0;
        perSecond.push(o.files / (result.ms / 1000));

        const listed = (await api.listAllFiles({})).items;
        let wrong = 0;
        for (const f of listed) if (expected.get(f.name) !== f.sha1) wrong++;
        if (listed.length !== o.files || wrong > 0) {
          return addFailure(
            `web app: the server lists ${listed.length} files (${wrong} with a wrong or unknown SHA-1), ${o.files} were uploaded`,
          );
        }
        addNote(
          `8 web app, run ${r + 1}: ${o.files} files, ${(bytes / 1e6).toFixed(1)} MB in ${(result.ms / 1000).toFixed(2)} s ` +
            `(change event → "${o.files} of ${o.files} done"); app CPU ${appCpu.toFixed(1)} s, app disk writes ` +
            `${(written / 1e6).toFixed(0)} MB; requests: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`,
        );
      } finally {
        await context.close();
        await rm(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await closeBrowser();
    await app.stop();
  }
  addRow({
    group: '8 web app',
    what: `${o.files} files of 1–50 KiB through the web app in Chromium (file input → all done), local node, SQLite`,
    unit: 'files/s',
    values: perSecond,
    higherIsBetter: true,
  });
  addRow({
    group: '8 web app',
    what: `the same, wall from Node (setInputFiles called → "done" seen)`,
    unit: 's',
    values: wallFromNode,
  });
}
