/**
 * 12. Sync clients people already have, against one dfs server (the bundle, local node, SQLite):
 * Debian's `nextcloudcmd` (the Nextcloud desktop app's sync engine) doing a first sync of many
 * small files and of one big file (chunked upload v2), against `rclone copy` of the same kind of
 * data over `/dav/` with `vendor=nextcloud` (and over `/remote.php/dav/files/<user>/`, the mount
 * the Nextcloud clients use). Each first sync goes into a fresh account with fresh random
 * content, so nothing is known to the server beforehand. Then a no-change re-sync of a big tree:
 * nextcloudcmd's third run after its first upload (the second still lists the folders it created
 * itself), against `rclone copy` with nothing to copy over the same tree. The app logs at info
 * level here: every request it saw, with its time, is read back from its log.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdir, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { nextcloudcmd } from '@dfs/cluster/clients';
import { REPO_ROOT, type RunningApp, startApp } from '../lib/app.ts';
import { addFailure, addNote, addRow } from '../lib/report.ts';
import {
  cpuSeconds,
  freshenHead,
  median,
  percentile,
  run,
  sizeLabel,
  sleep,
  writeRandomFile,
} from '../lib/util.ts';

export interface SyncOptions {
  tmp: string;
  /** Small files in the first-sync comparison (1–50 KiB each). */
  smallFiles: number;
  smallRuns: number;
  bigBytes: number;
  bigRuns: number;
  /** Files in the tree re-synced with nothing changed (1–4 KiB each, 100 per folder). */
  treeFiles: number;
  /** Timed no-change runs (nextcloudcmd's third run on, and as many of rclone's). */
  resyncRuns: number;
}

const GROUP = '12 sync';
const RCLONE_DAV = '`rclone copy` → /dav/ (vendor=nextcloud)';

/** One request as the app logged it (Fastify's "incoming request" and "request completed"). */
interface LoggedRequest {
  method: string;
  url: string;
  status: number;
  ms: number;
}

/**
 * The requests the app answered between two moments, read from its log file (startApp keeps the
 * app's output in `.bench/app-<port>.log`). Marks wait for the file to stop growing, so a client
 * that has exited has all its requests in it.
 */
class RequestLog {
  readonly #file: string;
  #offset = 0;

  constructor(app: RunningApp) {
    this.#file = path.join(REPO_ROOT, '.bench', `app-${new URL(app.url).port}.log`);
  }

  async #settledSize(): Promise<number> {
    let last = -1;
    for (;;) {
      const size = (await stat(this.#file)).size;
      if (size === last) return size;
      last = size;
      await sleep(150);
    }
  }

  async mark(): Promise<void> {
    this.#offset = await this.#settledSize();
  }

  /** The requests completed since the last mark (and moves the mark to now). */
  async since(): Promise<LoggedRequest[]> {
    const end = await this.#settledSize();
    const fh = await open(this.#file, 'r');
    const buf = Buffer.alloc(end - this.#offset);
    try {
      await fh.read(buf, 0, buf.length, this.#offset);
    } finally {
      await fh.close();
    }
    this.#offset = end;
    const started = new Map<string, { method: string; url: string }>();
    const done: LoggedRequest[] = [];
    for (const line of buf.toString('utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      let entry: {
        msg?: string;
        reqId?: string;
        req?: { method: string; url: string };
        res?: { statusCode: number };
        responseTime?: number;
      };
      try {
        entry = JSON.parse(line);
      } catch {
        continue;
      }
      if (!entry.reqId) continue;
      if (entry.msg === 'incoming request' && entry.req) started.set(entry.reqId, entry.req);
      else if (entry.msg === 'request completed') {
        const req = started.get(entry.reqId);
        if (!req) continue;
        done.push({
          method: req.method,
          url: req.url,
          status: entry.res?.statusCode ?? 0,
          ms: entry.responseTime ?? 0,
        });
      }
    }
    return done;
  }
}

/** "PUT 1000 (median 9 ms, p95 21 ms), PROPFIND 12 (…)": what a run asked of the app. */
function byMethod(requests: LoggedRequest[]): string {
  const groups = new Map<string, number[]>();
  for (const r of requests) {
    const key = r.url.startsWith('/remote.php/dav/uploads/') ? `${r.method} (upload folder)` : r.method;
    groups.set(key, [...(groups.get(key) ?? []), r.ms]);
  }
  return [...groups]
    .sort((a, b) => b[1].length - a[1].length)
    .map(([key, ms]) => {
      const sum = ms.reduce((a, b) => a + b, 0);
      const times =
        ms.length === 1
          ? `${ms[0]!.toFixed(0)} ms`
          : `median ${median(ms).toFixed(1)} ms, p95 ${percentile(ms, 95).toFixed(0)} ms, Σ ${(sum / 1000).toFixed(2)} s`;
      return `${key} ${ms.length} (${times})`;
    })
    .join(', ');
}

/** Each request of a short run, in order: `PROPFIND /remote.php/dav/files/u/ 207 12 ms`. */
function eachRequest(requests: LoggedRequest[]): string {
  return requests
    .map((r) => `${r.method} ${decodeURIComponent(r.url.split('?')[0]!)} ${r.status} ${r.ms.toFixed(1)} ms`)
    .join('; ');
}

const serverMs = (requests: LoggedRequest[]) => requests.reduce((a, r) => a + r.ms, 0);
const writes = (requests: LoggedRequest[]) =>
  requests.filter((r) => ['PUT', 'MOVE', 'DELETE', 'MKCOL', 'COPY', 'PROPPATCH'].includes(r.method));

/**
 * `files` files of fresh random content, `perFolder` to a folder, folders 10 to a level
 * (`d03/d07/f0042.bin`), sizes drawn from [min, max] bytes. Answers the bytes written.
 */
async function makeTree(dir: string, files: number, perFolder: number, min: number, max: number) {
  const folders = Math.ceil(files / perFolder);
  let bytes = 0;
  for (let f = 0; f < folders; f++) {
    const rel =
      folders <= 10
        ? `d${String(f).padStart(2, '0')}`
        : `d${String(Math.floor(f / 10)).padStart(2, '0')}/d${String(f % 10).padStart(2, '0')}`;
    const folder = path.join(dir, rel);
    await mkdir(folder, { recursive: true });
    for (let i = f * perFolder; i < Math.min(files, (f + 1) * perFolder); i++) {
      const data = randomBytes(randomInt(min, max + 1));
      bytes += data.length;
      await writeFile(path.join(folder, `f${String(i).padStart(5, '0')}.bin`), data);
    }
  }
  return bytes;
}

interface Account {
  username: string;
  secret: string;
}

export async function benchSync(o: SyncOptions): Promise<void> {
  const app = await startApp({
    dataDir: path.join(o.tmp, 'app-sync'),
    nodes: `local://${path.join(o.tmp, 'node-sync')}`,
    replicas: 1,
    env: { DFS_LOG_LEVEL: 'info' },
  });
  const log = new RequestLog(app);
  let accounts = 0;
  /** A fresh account (first sync means an empty server side) with an app password. */
  const account = async (what: string): Promise<Account> => {
    const username = `${what}-${++accounts}`;
    const api = await app.user(username);
    return { username, secret: (await api.createAppPassword('Nextcloud sync client')).secret };
  };
  const rcloneConfig = path.join(o.tmp, 'sync-rclone.conf');
  await writeFile(rcloneConfig, '');
  /** rclone's remote `dfs:` for that account: dfs's own mount, or the Nextcloud files mount. */
  const rcloneEnv = async (a: Account, mount: 'dav' | 'remote.php'): Promise<NodeJS.ProcessEnv> => ({
    ...process.env,
    RCLONE_CONFIG: rcloneConfig,
    RCLONE_CONFIG_DFS_TYPE: 'webdav',
    RCLONE_CONFIG_DFS_URL:
      mount === 'dav' ? `${app.url}/dav/` : `${app.url}/remote.php/dav/files/${a.username}/`,
    RCLONE_CONFIG_DFS_VENDOR: 'nextcloud',
    RCLONE_CONFIG_DFS_USER: a.username,
    RCLONE_CONFIG_DFS_PASS: (await run('rclone', ['obscure', a.secret])).stdout.trim(),
  });
  /** Dotfiles are nextcloudcmd's journal and log, which it does not sync either. */
  const rcloneCheck = async (dir: string, a: Account) => {
    const r = await run('rclone', ['check', dir, 'dfs:', '--exclude', '.*'], {
      env: await rcloneEnv(a, 'dav'),
      allowFail: true,
    });
    return r.code === 0 ? null : r.stderr.trim().split('\n').slice(-3).join(' / ');
  };

  /** One nextcloudcmd run over `dir` for that account: wall seconds and the requests it sent. */
  const ncSync = async (dir: string, a: Account) => {
    await log.mark();
    const cpu0 = cpuSeconds(app.pid);
    const t0 = performance.now();
    const r = await nextcloudcmd({
      dir,
      url: app.url,
      user: a.username,
      password: a.secret,
      home: `${dir}.home`,
    });
    const s = (performance.now() - t0) / 1000;
    if (r.code !== 0) throw new Error(`nextcloudcmd exited with ${r.code}:\n${r.output.slice(-3000)}`);
    return { s, appCpu: cpuSeconds(app.pid) - cpu0, requests: await log.since() };
  };
  const rcloneCopy = async (dir: string, a: Account, mount: 'dav' | 'remote.php', extra: string[] = []) => {
    const env = await rcloneEnv(a, mount);
    await log.mark();
    const cpu0 = cpuSeconds(app.pid);
    const r = await run('rclone', ['copy', dir, 'dfs:', ...extra], { env });
    return { s: r.ms / 1000, appCpu: cpuSeconds(app.pid) - cpu0, requests: await log.since() };
  };

  try {
    // ---- first sync: many small files ----
    const small = { nc: [] as number[], dav: [] as number[], remote: [] as number[] };
    const smallS = { nc: [] as number[], dav: [] as number[], remote: [] as number[] };
    for (let r = 0; r < o.smallRuns; r++) {
      console.error(`bench: sync, first sync of ${o.smallFiles} small files, run ${r + 1}/${o.smallRuns}`);
      for (const tool of ['nc', 'dav', 'remote'] as const) {
        // The second mount is the same implementation: one run of it shows that, and saves time.
        if (tool === 'remote' && r > 0) continue;
        const dir = path.join(o.tmp, `sync-small-${tool}-${r}`);
        await makeTree(dir, o.smallFiles, 100, 1024, 50 * 1024);
        const a = await account(`small-${tool}`);
        const result =
          tool === 'nc'
            ? await ncSync(dir, a)
            : await rcloneCopy(dir, a, tool === 'dav' ? 'dav' : 'remote.php');
        small[tool].push(o.smallFiles / result.s);
        smallS[tool].push(result.s);
        const puts = result.requests.filter((x) => x.method === 'PUT').length;
        if (puts !== o.smallFiles) addFailure(`sync: ${tool} sent ${puts} PUTs for ${o.smallFiles} files`);
        if (tool === 'nc') {
          const wrong = await rcloneCheck(dir, a);
          if (wrong) addFailure(`sync: after nextcloudcmd's first sync, rclone check: ${wrong}`);
        }
        if (r === 0) {
          addNote(
            `12 sync, first sync of ${o.smallFiles} small files by ${tool === 'nc' ? 'nextcloudcmd' : `rclone over ${tool === 'dav' ? '/dav/' : '/remote.php/dav/files/<user>/'}`}: ` +
              `${result.s.toFixed(2)} s wall, app CPU ${result.appCpu.toFixed(2)} s, the app's answers Σ ${(serverMs(result.requests) / 1000).toFixed(2)} s; ` +
              `requests: ${byMethod(result.requests)}`,
          );
        }
        await rm(dir, { recursive: true, force: true });
        await rm(`${dir}.home`, { recursive: true, force: true });
      }
    }
    const secs = (v: number[]) => `${median(v).toFixed(2)} s`;
    addRow({
      group: GROUP,
      what: `nextcloudcmd first sync, ${o.smallFiles} files of 1–50 KiB in ${Math.ceil(o.smallFiles / 100)} folders`,
      note: `${secs(smallS.nc)} against ${secs(smallS.dav)}`,
      unit: 'files/s',
      values: small.nc,
      alt: { name: RCLONE_DAV, values: small.dav },
      higherIsBetter: true,
    });
    addRow({
      group: GROUP,
      what: `rclone copy → /remote.php/dav/files/<user>/ (vendor=nextcloud), the same ${o.smallFiles} files`,
      note: `${secs(smallS.remote)} against ${secs(smallS.dav)} (one implementation, two mounts)`,
      unit: 'files/s',
      values: small.remote,
      alt: { name: RCLONE_DAV, values: small.dav },
      higherIsBetter: true,
    });

    // ---- first sync: one big file ----
    const label = sizeLabel(o.bigBytes);
    const big = path.join(o.tmp, 'sync-big.bin');
    await writeRandomFile(big, o.bigBytes);
    const bigMb = { nc: [] as number[], dav: [] as number[] };
    const bigS = { nc: [] as number[], dav: [] as number[] };
    for (let r = 0; r < o.bigRuns; r++) {
      console.error(`bench: sync, first sync of one ${label} file, run ${r + 1}/${o.bigRuns}`);
      for (const tool of ['nc', 'dav'] as const) {
        // New content each time: the server must receive and store every byte.
        await freshenHead(big);
        const dir = path.join(o.tmp, `sync-big-${tool}-${r}`);
        await mkdir(dir);
        await rename(big, path.join(dir, 'big.bin'));
        const a = await account(`big-${tool}`);
        try {
          const result = tool === 'nc' ? await ncSync(dir, a) : await rcloneCopy(dir, a, 'dav');
          bigMb[tool].push(o.bigBytes / 1e6 / result.s);
          bigS[tool].push(result.s);
          if (tool === 'nc') {
            const wrong = await rcloneCheck(dir, a);
            if (wrong) addFailure(`sync: after nextcloudcmd's ${label} upload, rclone check: ${wrong}`);
          }
          if (r === 0) {
            addNote(
              `12 sync, first sync of one ${label} file by ${tool === 'nc' ? 'nextcloudcmd (chunked upload v2)' : 'rclone over /dav/ (one PUT)'}: ` +
                `${result.s.toFixed(2)} s wall, app CPU ${result.appCpu.toFixed(2)} s; requests: ${byMethod(result.requests)}`,
            );
          }
        } finally {
          await rename(path.join(dir, 'big.bin'), big);
          await rm(dir, { recursive: true, force: true });
          await rm(`${dir}.home`, { recursive: true, force: true });
        }
      }
    }
    await rm(big, { force: true });
    addRow({
      group: GROUP,
      what: `nextcloudcmd first sync, one ${label} file (chunked upload v2)`,
      note: `${secs(bigS.nc)} against ${secs(bigS.dav)}`,
      unit: 'MB/s',
      values: bigMb.nc,
      alt: { name: RCLONE_DAV, values: bigMb.dav },
      higherIsBetter: true,
    });

    // ---- a big tree: first sync, then re-syncs with nothing changed ----
    console.error(`bench: sync, first sync of a ${o.treeFiles}-file tree`);
    const tree = path.join(o.tmp, 'sync-tree');
    const treeBytes = await makeTree(tree, o.treeFiles, 100, 1024, 4 * 1024);
    const owner = await account('tree');
    const first = await ncSync(tree, owner);
    const wrong = await rcloneCheck(tree, owner);
    if (wrong) addFailure(`sync: after nextcloudcmd's first sync of the tree, rclone check: ${wrong}`);
    addNote(
      `12 sync, nextcloudcmd first sync of the ${o.treeFiles}-file tree (${(treeBytes / 1e6).toFixed(0)} MB, ` +
        `${Math.ceil(o.treeFiles / 100)} folders of 100 under 10 top folders): ${first.s.toFixed(1)} s wall, ` +
        `${(o.treeFiles / first.s).toFixed(0)} files/s, app CPU ${first.appCpu.toFixed(1)} s; the app's answers Σ ${(serverMs(first.requests) / 1000).toFixed(1)} s; ` +
        `requests: ${byMethod(first.requests)}`,
    );
    const second = await ncSync(tree, owner);
    addNote(
      `12 sync, nextcloudcmd's second run over the tree (lists the folders it created, §7.1 of the protocol brief): ` +
        `${second.s.toFixed(2)} s wall, ${second.requests.length} requests (${byMethod(second.requests)}), ` +
        `${writes(second.requests).length} writes`,
    );
    const quiet = { nc: [] as number[], rclone: [] as number[] };
    const quietRequests = { nc: [] as LoggedRequest[][], rclone: [] as LoggedRequest[][] };
    for (let r = 0; r < o.resyncRuns; r++) {
      console.error(`bench: sync, no-change re-sync of the tree, run ${r + 1}/${o.resyncRuns}`);
      const nc = await ncSync(tree, owner);
      // The same local tree, the same account: sizes and mtimes (kept by nextcloudcmd) all match.
      const rc = await rcloneCopy(tree, owner, 'dav', ['--exclude', '.*']);
      for (const [tool, result] of [
        ['nc', nc],
        ['rclone', rc],
      ] as const) {
        quiet[tool].push(result.s * 1000);
        quietRequests[tool].push(result.requests);
        const wrote = writes(result.requests);
        if (wrote.length > 0) {
          addFailure(`sync: a no-change ${tool} run wrote: ${eachRequest(wrote.slice(0, 5))}`);
        }
      }
    }
    addRow({
      group: GROUP,
      what: `nextcloudcmd re-sync with nothing changed, ${o.treeFiles}-file tree (third run on; target < 1 s)`,
      unit: 'ms',
      values: quiet.nc,
      alt: { name: '`rclone copy` → /dav/ with nothing to copy', values: quiet.rclone },
    });
    const medianRun = (runs: LoggedRequest[][], walls: number[]) =>
      runs[walls.indexOf([...walls].sort((a, b) => a - b)[Math.floor((walls.length - 1) / 2)]!)]!;
    const ncQuiet = medianRun(quietRequests.nc, quiet.nc);
    const rcQuiet = medianRun(quietRequests.rclone, quiet.rclone);
    addNote(
      `12 sync, the median no-change nextcloudcmd run: ${ncQuiet.length} requests, the app's answers Σ ` +
        `${serverMs(ncQuiet).toFixed(1)} ms of ${median(quiet.nc).toFixed(0)} ms wall: ${eachRequest(ncQuiet)}`,
    );
    addNote(
      `12 sync, the median no-change rclone copy: ${rcQuiet.length} requests, the app's answers Σ ` +
        `${serverMs(rcQuiet).toFixed(0)} ms: ${byMethod(rcQuiet)}`,
    );
    await rm(tree, { recursive: true, force: true });
    await rm(`${tree}.home`, { recursive: true, force: true });
  } finally {
    await app.stop();
  }
}
