/**
 * 2–5 and 7: one big file through dfs (CLI → app → one SFTP node on a real loopback sshd) against
 * OpenSSH's `sftp` to the same sshd and a stock @tus/server; the upload broken into its phases;
 * instant upload of known content; download and Range reads; the app's and tus's peak RSS.
 */
import { createHash, randomInt } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type DfsApi, Upload, type UploadSnapshot, type UploadState } from '@dfs/client';
import { fileSourceFromPath, nodeHashFile, nodeUploadOptions } from '@dfs/client/node';
import { REPO_ROOT, startApp } from '../lib/app.ts';
import { addFailure, addNote, addRow } from '../lib/report.ts';
import { startBenchSshd } from '../lib/sshd.ts';
import { traceTransport } from '../lib/trace.ts';
import { startTus, tusUploadToDfs } from '../lib/tus.ts';
import {
  cpuSeconds,
  cpuSecondsOfUid,
  currentRss,
  freshenHead,
  GiB,
  ioBytes,
  MiB,
  machineBusySeconds,
  mbPerSecond,
  median,
  peakRss,
  percentile,
  readRange,
  resetPeakRss,
  run,
  sha1OfFile,
  sizeLabel,
  writeRandomFile,
} from '../lib/util.ts';

export interface UploadBenchOptions {
  tmp: string;
  bytes: number;
  runs: number;
  rangeReads: number;
}

/** What the in-process upload's phases cost, per phase: wall time and who spent CPU / disk. */
export interface PhaseSample {
  ms: number;
  appCpu: number;
  sshdCpu: number;
  clientCpu: number;
  appDiskWrite: number;
  appDiskRead: number;
}

/**
 * Windows of the in-process upload, each bounded by its own two moments (they can overlap):
 * firstChunk start → first chunk PUT called; hashing start → last byte hashed; create the first
 * POST /api/uploads; chunks first chunk PUT → POST complete sent; complete POST complete sent →
 * answered; total start → done.
 */
export const PHASES = ['firstChunk', 'hashing', 'create', 'chunks', 'complete', 'total'] as const;
export type Phase = (typeof PHASES)[number];

/** Filled by `benchUpload`, rendered by main.ts as the phase table. */
export const phaseSamples = new Map<Phase, PhaseSample[]>(PHASES.map((p) => [p, []]));
/** Per in-process upload: whether hashing was still running when the first chunk went out. */
export const phaseOverlap: boolean[] = [];

// The CLI as it ships: the bundle scripts/bench.sh builds, run by plain node.
const CLI = path.join(REPO_ROOT, 'packages/client/dist/cli.js');
const RSS_LIMIT = 300e6;

export async function benchUpload(o: UploadBenchOptions): Promise<void> {
  const label = sizeLabel(o.bytes);
  const src = path.join(o.tmp, 'big.bin');
  const out = path.join(o.tmp, 'download.bin');
  await writeRandomFile(src, o.bytes);

  const sshd = await startBenchSshd(o.tmp);
  const nodeDir = await sshd.dir('dfs');
  const baselineDir = await sshd.dir('baseline');
  const app = await startApp({
    dataDir: path.join(o.tmp, 'app-sftp'),
    nodes: sshd.handle.url('key', nodeDir),
    replicas: 1,
  });
  const api = await app.user('bench-admin');
  // The same upload to a local node: the fair comparison with tus's file store (no SSH between
  // the app and its disk).
  const localApp = await startApp({
    dataDir: path.join(o.tmp, 'app-local'),
    nodes: `local://${path.join(o.tmp, 'node-local')}`,
    replicas: 1,
  });
  const localApi = await localApp.user('bench-admin');
  const tus = await startTus(path.join(o.tmp, 'tus'));
  const cliEnv = {
    ...process.env,
    DFS_SERVER: app.url,
    DFS_TOKEN: api.token ?? '',
    DFS_CLIENT_CONFIG: path.join(o.tmp, 'cli-config.json'),
  };
  // e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the CLI's side of the upload.
  const cliNodeArgs = (process.env.DFS_BENCH_CLI_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const cli = (args: string[]) =>
    run(process.execPath, [...cliNodeArgs, CLI, ...args], { env: cliEnv, cwd: REPO_ROOT });
  const localCliEnv = {
    ...process.env,
    DFS_SERVER: localApp.url,
    DFS_TOKEN: localApi.token ?? '',
    DFS_CLIENT_CONFIG: path.join(o.tmp, 'cli-config-local.json'),
  };
  const localCli = (args: string[]) =>
    run(process.execPath, [...cliNodeArgs, CLI, ...args], { env: localCliEnv, cwd: REPO_ROOT });

  const v = {
    sftpPut: [] as number[],
    sftpPutFsync: [] as number[],
    ddFsync: [] as number[],
    cliUpload: [] as number[],
    cliUploadLocal: [] as number[],
    appCpuSftp: [] as number[],
    appCpuLocal: [] as number[],
    cliDiskPct: [] as number[],
    engineDiskPct: [] as number[],
    firstChunk: [] as number[],
    hashAlone: [] as number[],
    engineTotal: [] as number[],
    complete: [] as number[],
    tus: [] as number[],
    tusDfs: [] as number[],
    davCurl: [] as number[],
    davRclone: [] as number[],
    instantKnown: [] as number[],
    instantHashing: [] as number[],
    download: [] as number[],
    downloadInProcess: [] as number[],
    sftpGet: [] as number[],
    // CPU seconds of the in-process download: the machine, the app, the node's sftp-server, the
    // bench process (HTTP and the SHA-1 check); and the machine's for `sftp get`.
    cpuDownload: [] as number[],
    cpuDownloadApp: [] as number[],
    cpuDownloadSshd: [] as number[],
    cpuDownloadClient: [] as number[],
    cpuSftpGet: [] as number[],
    rangeMs: [] as number[],
    rssCli: [] as number[],
    rssEngine: [] as number[],
    rssTus: [] as number[],
    rssDownload: [] as number[],
    // Machine CPU seconds (all processes and the kernel) per transfer.
    cpuSftpPut: [] as number[],
    cpuCli: [] as number[],
    cpuTus: [] as number[],
    /** @tus/server's own process, CPU seconds per GiB: the peer of the app-alone rows. */
    cpuTusServer: [] as number[],
    cpuTusDfs: [] as number[],
    busyCli: [] as number[],
  };
  const source = await fileSourceFromPath(src);
  const appPassword = (await api.createAppPassword('bench tus')).secret;
  const username = (await api.me()).user.username;
  // rclone's WebDAV remote, configured through the environment (no config file of the user's).
  const rcloneEnv = {
    ...process.env,
    RCLONE_CONFIG: path.join(o.tmp, 'rclone.conf'),
    RCLONE_CONFIG_DFS_TYPE: 'webdav',
    RCLONE_CONFIG_DFS_URL: `${app.url}/dav/`,
    RCLONE_CONFIG_DFS_VENDOR: 'other',
    RCLONE_CONFIG_DFS_USER: username,
    RCLONE_CONFIG_DFS_PASS: (await run('rclone', ['obscure', appPassword])).stdout.trim(),
  };
  await writeFile(rcloneEnv.RCLONE_CONFIG, '');
  let uploadCount = 0;
  let knownSent = 0; // uploads of known content without the SHA-1 that sent the bytes anyway
  const name = () => `big-${++uploadCount}.bin`;

  const idleRss = currentRss(app.pid);
  const startup: number[] = [];
  for (let i = 0; i < 3; i++) startup.push((await cli(['help'])).ms / 1000);
  addRow({
    group: '2 upload',
    what: 'dfs CLI start-up alone (`dfs help`: node, bundled CLI)',
    unit: 's',
    values: startup,
  });

  // Warm-up: every path once over a small file (connections, JIT, the sshd session), not counted.
  {
    const small = path.join(o.tmp, 'warm.bin');
    await writeRandomFile(small, 16 * MiB);
    await sshd.sftp([`put ${small} ${baselineDir}/warm.bin`, `rm ${baselineDir}/warm.bin`]);
    await cli(['upload', small, '--id']);
    await localCli(['upload', small, '--id']);
    const stored = await tus.upload(small, 8 * MiB);
    await rm(stored, { force: true });
    await rm(`${stored}.json`, { force: true });
    await rm(small);
  }

  for (let r = 0; r < o.runs; r++) {
    console.error(`bench: upload run ${r + 1}/${o.runs} (${label})`);

    // ---- 2a: the alternatives: OpenSSH sftp put (plain, and with fsync like dfs's nodes), dd ----
    await freshenHead(src);
    let sha1 = await sha1OfFile(src);
    for (const [flag, values] of [
      ['', v.sftpPut],
      ['-f ', v.sftpPutFsync],
    ] as const) {
      const target = path.join(baselineDir, 'put.bin');
      const busy0 = machineBusySeconds();
      const put = await sshd.sftp([`put ${flag}${src} ${target}`]);
      if (flag === '') v.cpuSftpPut.push(machineBusySeconds() - busy0);
      const stored = await sha1OfFile(target);
      await rm(target);
      if (stored !== sha1) return addFailure(`sftp put stored ${stored}, source is ${sha1}`);
      values.push(put.ms / 1000);
    }
    const ddOut = path.join(o.tmp, 'dd.bin');
    const dd = await run('dd', [`if=${src}`, `of=${ddOut}`, 'bs=8M', 'conv=fdatasync', 'status=none']);
    await rm(ddOut);
    v.ddFsync.push(mbPerSecond(o.bytes, dd.ms));

    // ---- 2b: dfs CLI upload of new content ----
    resetPeakRss(app.pid);
    const written0 = ioBytes(app.pid).write;
    const cliBusy0 = machineBusySeconds();
    const appCpu0 = cpuSeconds(app.pid);
    const up = await cli(['upload', src, '--id']);
    const cliBusy = machineBusySeconds() - cliBusy0;
    v.appCpuSftp.push((cpuSeconds(app.pid) - appCpu0) / (o.bytes / GiB));
    v.cpuCli.push(cliBusy);
    v.busyCli.push((cliBusy / (os.cpus().length * (up.ms / 1000))) * 100);
    v.cliDiskPct.push(((ioBytes(app.pid).write - written0) / o.bytes) * 100);
    v.rssCli.push(peakRss(app.pid));
    const cliFile = (await api.getFile(up.stdout.trim())).file;
    if (cliFile.sha1 !== sha1 || cliFile.size !== o.bytes) {
      return addFailure(`dfs CLI upload registered ${cliFile.sha1}/${cliFile.size}, source is ${sha1}`);
    }
    v.cliUpload.push(up.ms / 1000);

    // ---- 2b': the same CLI upload to a local node ----
    {
      const cpu0 = cpuSeconds(localApp.pid);
      const local = await localCli(['upload', src, '--id']);
      v.appCpuLocal.push((cpuSeconds(localApp.pid) - cpu0) / (o.bytes / GiB));
      const stored = (await localApi.getFile(local.stdout.trim())).file;
      if (stored.sha1 !== sha1) return addFailure(`dfs CLI upload to a local node registered ${stored.sha1}`);
      v.cliUploadLocal.push(local.ms / 1000);
    }

    // ---- 2c: the same engine in-process, new content, timed per phase ----
    await freshenHead(src);
    sha1 = await sha1OfFile(src);
    // The hash-first path's time to the first chunk is at least the whole file's hashing.
    const h0 = performance.now();
    await nodeHashFile(source);
    v.hashAlone.push((performance.now() - h0) / 1000);
    resetPeakRss(app.pid);
    const engine = await tracedUpload(api, source, name(), app.pid, sshd.uid);
    v.rssEngine.push(peakRss(app.pid));
    if (engine.sha1 !== sha1)
      return addFailure(`in-process upload registered ${engine.sha1}, source is ${sha1}`);
    v.engineTotal.push(engine.totalMs / 1000);
    v.complete.push(engine.completeMs / 1000);
    if (engine.firstChunkMs === null) return addFailure(`in-process upload sent no chunk (${engine.calls})`);
    v.firstChunk.push(engine.firstChunkMs / 1000);
    const total = engine.phases.total!;
    v.engineDiskPct.push((total.appDiskWrite / o.bytes) * 100);
    for (const p of PHASES) {
      const sample = engine.phases[p];
      if (sample) phaseSamples.get(p)!.push(sample);
    }
    phaseOverlap.push(engine.overlapped);
    if (r === 0) {
      addNote(
        `in-process ${label} upload, run 1: states ${engine.states}; transport calls: ${engine.calls}; ` +
          `hashing ${engine.overlapped ? 'still running when the first chunk went out (speculative)' : 'finished before the first chunk'}`,
      );
    }
    const fileId = engine.fileId;

    // ---- 3: the peer: tus-js-client → @tus/server + FileStore (tmp dir) ----
    resetPeakRss(tus.pid);
    const t0 = performance.now();
    const tusBusy0 = machineBusySeconds();
    const tusCpu0 = cpuSeconds(tus.pid);
    const stored = await tus.upload(src, 8 * MiB);
    v.tus.push((performance.now() - t0) / 1000);
    v.cpuTus.push(machineBusySeconds() - tusBusy0);
    v.cpuTusServer.push((cpuSeconds(tus.pid) - tusCpu0) / (o.bytes / GiB));
    v.rssTus.push(peakRss(tus.pid));
    const tusSha1 = await sha1OfFile(stored);
    await rm(stored);
    await rm(`${stored}.json`, { force: true });
    if (tusSha1 !== sha1) return addFailure(`tus stored ${tusSha1}, source is ${sha1}`);

    // ---- 3b: the same client → dfs's own tus endpoint (an app password, 8 MiB PATCHes) ----
    {
      const tusName = `tus-${r}-${Date.now().toString(36)}.bin`;
      const t1 = performance.now();
      const busy0 = machineBusySeconds();
      await tusUploadToDfs(app.url, appPassword, src, 8 * MiB, tusName);
      v.tusDfs.push((performance.now() - t1) / 1000);
      v.cpuTusDfs.push(machineBusySeconds() - busy0);
      const found = (await api.listFiles({ q: tusName })).items[0];
      if (found?.sha1 !== sha1) return addFailure(`tus → dfs stored ${found?.sha1}, source is ${sha1}`);
    }

    // ---- 3c: WebDAV PUT of the same file: curl -T, then rclone (each time a new name) ----
    for (const [tool, values] of [
      ['curl', v.davCurl],
      ['rclone', v.davRclone],
    ] as const) {
      const davName = `dav-${tool}-${r}-${Date.now().toString(36)}.bin`;
      const t2 = performance.now();
      if (tool === 'curl') {
        await run('curl', [
          '-sSf',
          '-T',
          src,
          '-u',
          `${username}:${appPassword}`,
          `${app.url}/dav/${davName}`,
        ]);
      } else {
        await run('rclone', ['copyto', src, `dfs:${davName}`], { env: rcloneEnv });
      }
      values.push((performance.now() - t2) / 1000);
      const found = (await api.listFiles({ q: davName })).items[0];
      if (found?.sha1 !== sha1)
        return addFailure(`WebDAV PUT (${tool}) stored ${found?.sha1}, source is ${sha1}`);
    }

    // ---- 4: instant upload of the content just stored: known SHA-1, then hashing included ----
    for (const [known, values] of [
      [true, v.instantKnown],
      [false, v.instantHashing],
    ] as const) {
      const u = new Upload(source, {
        transport: api,
        name: name(),
        ...nodeUploadOptions,
        ...(known ? { sha1 } : {}),
      });
      const started = performance.now();
      u.start();
      const file = await u.result();
      values.push((performance.now() - started) / 1000);
      if (file.sha1 !== sha1)
        return addFailure(`upload of known content (sha1 given: ${known}) got ${file.sha1}`);
      // With the SHA-1 given it must be instant. Without it, a client that starts sending before
      // it knows the hash (speculative path) may send the bytes: counted, and said so in the row.
      if (!u.snapshot().instant) {
        if (known) return addFailure('upload of known content with its SHA-1 given was not instant');
        knownSent++;
      }
    }

    // ---- 5: download (CLI, which checks the SHA-1 itself) vs sftp get of the same object ----
    resetPeakRss(app.pid);
    const down = await cli(['download', fileId, out, '--force']);
    v.rssDownload.push(peakRss(app.pid));
    const got = await sha1OfFile(out);
    await rm(out);
    if (got !== sha1) return addFailure(`dfs download returned ${got}, source is ${sha1}`);
    v.download.push(down.ms / 1000);
    // Sampled before the clock starts: finding the SFTP sessions' processes reads all of /proc.
    const cpu0 = {
      machine: machineBusySeconds(),
      app: cpuSeconds(app.pid),
      sshd: cpuSecondsOfUid(sshd.uid),
      client: process.cpuUsage(),
    };
    const t1 = performance.now();
    const streamed = await api.download(fileId);
    const hash = createHash('sha1');
    for await (const part of streamed.body as unknown as AsyncIterable<Uint8Array>) hash.update(part);
    v.downloadInProcess.push((performance.now() - t1) / 1000);
    v.cpuDownload.push(machineBusySeconds() - cpu0.machine);
    v.cpuDownloadApp.push(cpuSeconds(app.pid) - cpu0.app);
    v.cpuDownloadSshd.push(cpuSecondsOfUid(sshd.uid) - cpu0.sshd);
    const clientCpu = process.cpuUsage(cpu0.client);
    v.cpuDownloadClient.push((clientCpu.user + clientCpu.system) / 1e6);
    if (hash.digest('hex') !== sha1) return addFailure('in-process download: SHA-1 differs from the source');
    const object = path.join(nodeDir, 'objects', sha1.slice(0, 2), sha1.slice(2, 4), sha1);
    const getBusy0 = machineBusySeconds();
    const get = await sshd.sftp([`get ${object} ${out}`]);
    v.cpuSftpGet.push(machineBusySeconds() - getBusy0);
    const gotSftp = await sha1OfFile(out);
    await rm(out);
    if (gotSftp !== sha1) return addFailure(`sftp get returned ${gotSftp}, source is ${sha1}`);
    v.sftpGet.push(get.ms / 1000);

    // ---- 5b: random 64 KiB Range reads, each checked against the source ----
    const length = 64 * 1024;
    for (let i = 0; i < o.rangeReads; i++) {
      const offset = randomInt(0, o.bytes - length);
      const t = performance.now();
      const res = await api.download(fileId, { range: `bytes=${offset}-${offset + length - 1}` });
      const body = Buffer.from(await res.arrayBuffer());
      v.rangeMs.push(performance.now() - t);
      if (res.status !== 206 || !body.equals(await readRange(src, offset, length))) {
        return addFailure(`Range read at ${offset} returned ${res.status} with different bytes`);
      }
    }
  }

  const sftpPut = { name: 'OpenSSH `sftp put`', values: v.sftpPut };
  const g2 = '2 upload';
  addRow({
    group: g2,
    what: `dfs CLI upload, ${label} new content (wall)`,
    unit: 's',
    values: v.cliUpload,
    alt: sftpPut,
  });
  addRow({
    group: g2,
    what: `dfs CLI upload, ${label} (wall)`,
    unit: 's',
    values: v.cliUpload,
    alt: { name: '`sftp put -f` (fsync, as dfs nodes do)', values: v.sftpPutFsync },
  });
  addRow({
    group: g2,
    what: `client core Upload in-process, ${label} (wall)`,
    unit: 's',
    values: v.engineTotal,
    alt: sftpPut,
  });
  addRow({
    group: g2,
    what: `time to first chunk: in-process ${label} upload, start → first chunk PUT sent`,
    unit: 's',
    values: v.firstChunk,
    alt: { name: 'hash-first: hashing the whole file (node:crypto), same run', values: v.hashAlone },
  });
  for (const [phase, what] of [
    ['hashing', 'phase: client hashing, start → last byte hashed (node:crypto)'],
    ['chunks', 'phase: chunk PUTs, first PUT sent → POST complete sent'],
  ] as const) {
    addRow({ group: g2, what, unit: 's', values: phaseSamples.get(phase)!.map((s) => s.ms / 1000) });
  }
  addRow({
    group: g2,
    what: 'POST complete (transport-timed)',
    unit: 's',
    values: v.complete,
    alt: sftpPut,
  });
  addRow({
    group: g2,
    what: `app disk writes during the ${label} CLI upload, % of the bytes uploaded (/proc/<pid>/io write_bytes)`,
    unit: '%',
    values: v.cliDiskPct,
  });
  addRow({
    group: g2,
    what: `app disk writes during the in-process ${label} upload, % of the bytes uploaded`,
    unit: '%',
    values: v.engineDiskPct,
  });
  addRow({
    group: g2,
    what: `local disk: dd ${label} with fdatasync (the disk under the SFTP node's root, for scale)`,
    unit: 'MB/s',
    values: v.ddFsync,
    higherIsBetter: true,
  });
  // What each way of moving the file costs the machine: both sides share the same two cores, so
  // a transfer that needs more CPU seconds than the cores give per second of the alternative's
  // wall time cannot be faster than it here.
  const cpuRow = (what: string, values: number[], alt?: { name: string; values: number[] }) =>
    addRow({ group: '2 upload', what, unit: 's', values, ...(alt ? { alt } : {}) });
  cpuRow(
    `machine CPU seconds for the ${label} dfs CLI upload (all processes + kernel, /proc/stat)`,
    v.cpuCli,
    {
      name: 'the same for OpenSSH `sftp put`',
      values: v.cpuSftpPut,
    },
  );
  cpuRow(`machine CPU seconds for the ${label} dfs CLI upload`, v.cpuCli, {
    name: 'the same for tus-js-client → @tus/server',
    values: v.cpuTus,
  });
  cpuRow(`machine CPU seconds for tus-js-client → dfs /api/tus/, ${label}`, v.cpuTusDfs);
  addRow({
    group: '2 upload',
    what: `cores busy during the ${label} dfs CLI upload (machine CPU seconds / (cores × wall))`,
    unit: '%',
    values: v.busyCli,
  });
  addRow({
    group: '3 peer',
    what: `dfs CLI upload, ${label} (wall)`,
    unit: 's',
    values: v.cliUpload,
    alt: {
      name: 'tus-js-client → @tus/server FileStore (8 MiB chunks, no hashing, no fsync)',
      values: v.tus,
    },
  });
  addRow({
    group: '3 peer',
    what: `dfs CLI upload to a local node, ${label} (wall)`,
    unit: 's',
    values: v.cliUploadLocal,
    alt: {
      name: 'tus-js-client → @tus/server FileStore (8 MiB chunks, no hashing, no fsync)',
      values: v.tus,
    },
  });
  addRow({
    group: '2 upload',
    what: 'app CPU seconds per GiB, dfs CLI upload to the SFTP node (the app process alone)',
    unit: 's',
    values: v.appCpuSftp,
    alt: { name: '@tus/server process alone (FileStore: no hashing, no fsync)', values: v.cpuTusServer },
  });
  addRow({
    group: '2 upload',
    what: 'app CPU seconds per GiB, dfs CLI upload to a local node',
    unit: 's',
    values: v.appCpuLocal,
    alt: { name: '@tus/server process alone (FileStore: no hashing, no fsync)', values: v.cpuTusServer },
  });
  addRow({
    group: '3 peer',
    what: `tus-js-client → dfs /api/tus/ (8 MiB PATCHes, verified, on the SFTP node), ${label} (wall)`,
    unit: 's',
    values: v.tusDfs,
    alt: {
      name: 'tus-js-client → @tus/server FileStore (8 MiB chunks, no hashing, no fsync)',
      values: v.tus,
    },
  });
  addRow({
    group: '3 peer',
    what: `WebDAV PUT with curl -T → dfs /dav/, ${label} (wall)`,
    unit: 's',
    values: v.davCurl,
    alt: { name: 'dfs CLI upload (parallel chunks)', values: v.cliUpload },
  });
  addRow({
    group: '3 peer',
    what: `rclone copyto (WebDAV remote) → dfs /dav/, ${label} (wall)`,
    unit: 's',
    values: v.davRclone,
    alt: { name: 'dfs CLI upload (parallel chunks)', values: v.cliUpload },
  });
  addRow({
    group: '3 peer',
    what: `tus-js-client → @tus/server, ${label} (wall)`,
    unit: 's',
    values: v.tus,
    alt: sftpPut,
  });
  const fullUpload = { name: 'full CLI upload of new content', values: v.cliUpload };
  addRow({
    group: '4 instant',
    what: `${label} known content, SHA-1 given (start → done)`,
    unit: 's',
    values: v.instantKnown,
    alt: fullUpload,
  });
  addRow({
    group: '4 instant',
    what:
      knownSent === 0
        ? `${label} known content, hashing included (start → done)`
        : `${label} known content, SHA-1 not given (start → done; ${knownSent} of ${v.instantHashing.length} sent the bytes instead of being instant)`,
    unit: 's',
    values: v.instantHashing,
    alt: fullUpload,
  });
  addRow({
    group: '5 download',
    what: `dfs CLI download, ${label} (wall, SHA-1 checked)`,
    unit: 's',
    values: v.download,
    alt: { name: 'OpenSSH `sftp get` of the stored object', values: v.sftpGet },
  });
  addRow({
    group: '5 download',
    what: `in-process DfsApi.download, ${label} (stream + SHA-1, no disk)`,
    unit: 's',
    values: v.downloadInProcess,
    alt: { name: 'OpenSSH `sftp get` of the stored object', values: v.sftpGet },
  });
  addRow({
    group: '5 download',
    what: `machine CPU seconds for the in-process ${label} download (all processes + kernel)`,
    unit: 's',
    values: v.cpuDownload,
    alt: { name: 'the same for OpenSSH `sftp get`', values: v.cpuSftpGet },
  });
  addNote(
    `in-process ${label} download, CPU seconds (medians): app ${median(v.cpuDownloadApp).toFixed(2)}, ` +
      `the node's sftp-server ${median(v.cpuDownloadSshd).toFixed(2)}, ` +
      `bench process (HTTP + SHA-1 check) ${median(v.cpuDownloadClient).toFixed(2)}, ` +
      `machine ${median(v.cpuDownload).toFixed(2)}; \`sftp get\` machine ${median(v.cpuSftpGet).toFixed(2)}`,
  );
  addRow({
    group: '5 download',
    what: `Range GET 64 KiB, p50 of ${v.rangeMs.length}`,
    unit: 'ms',
    values: [percentile(v.rangeMs, 50)],
  });
  addRow({
    group: '5 download',
    what: `Range GET 64 KiB, p99 of ${v.rangeMs.length}`,
    unit: 'ms',
    values: [percentile(v.rangeMs, 99)],
  });
  const MB = (values: number[]) => values.map((b) => b / 1e6);
  addRow({
    group: '7 memory',
    what: `app peak RSS (VmHWM) during the ${label} CLI upload`,
    unit: 'MB',
    values: MB(v.rssCli),
    alt: { name: '@tus/server process, same file', values: MB(v.rssTus) },
  });
  addRow({
    group: '7 memory',
    what: `app peak RSS during the in-process ${label} upload`,
    unit: 'MB',
    values: MB(v.rssEngine),
  });
  addRow({
    group: '7 memory',
    what: `app peak RSS during the ${label} download`,
    unit: 'MB',
    values: MB(v.rssDownload),
  });
  const worst = Math.max(...v.rssCli, ...v.rssEngine);
  if (worst >= RSS_LIMIT)
    addFailure(`app peak RSS ${Math.round(worst / 1e6)} MB during an upload (limit 300 MB)`);
  addNote(
    `app peak RSS over all ${label} uploads: ${Math.round(worst / 1e6)} MB (limit 300 MB); ` +
      `app RSS at rest before the first upload: ${Math.round(idleRss / 1e6)} MB; ` +
      `median OpenSSH sftp put ${mbPerSecond(o.bytes, median(v.sftpPut) * 1000).toFixed(0)} MB/s, ` +
      `dfs CLI upload ${mbPerSecond(o.bytes, median(v.cliUpload) * 1000).toFixed(0)} MB/s`,
  );
}

interface Traced {
  fileId: string;
  sha1: string | null;
  /** start → done */
  totalMs: number;
  /** start → the first chunk PUT is called (its request goes out) */
  firstChunkMs: number | null;
  /** transport-timed POST complete (all attempts) */
  completeMs: number;
  /** whether the client was still hashing when the first chunk went out */
  overlapped: boolean;
  states: string;
  calls: string;
  phases: Partial<Record<Phase, PhaseSample>>;
}

/**
 * Drives one `Upload` (the CLI's settings) through a transport that times every call, and samples
 * time and /proc counters at the moments that bound the phases: start, the first chunk PUT, the
 * last hashed byte, POST complete sent and answered, done. Phases may overlap (a speculative
 * upload sends chunks while it hashes), so each is its own window, not a slice of one timeline.
 */
async function tracedUpload(
  api: DfsApi,
  source: Awaited<ReturnType<typeof fileSourceFromPath>>,
  name: string,
  appPid: number,
  sshUid: number,
): Promise<Traced> {
  const sample = () => {
    const io = ioBytes(appPid);
    const cpu = process.cpuUsage();
    return {
      t: performance.now(),
      appCpu: cpuSeconds(appPid),
      sshdCpu: cpuSecondsOfUid(sshUid),
      clientCpu: (cpu.user + cpu.system) / 1e6,
      appDiskWrite: io.write,
      appDiskRead: io.read,
    };
  };
  type Point = ReturnType<typeof sample>;
  type Moment =
    | 'start'
    | 'createSent'
    | 'created'
    | 'firstPut'
    | 'hashed'
    | 'completeSent'
    | 'completed'
    | 'end';
  const at: Partial<Record<Moment, Point>> = {};
  let completeMs = 0;
  const tracer = traceTransport(api, {
    onStart(method) {
      if (method === 'createUpload' && !at.createSent) at.createSent = sample();
      if (method === 'putChunk' && !at.firstPut) at.firstPut = sample();
      if (method === 'completeUpload' && !at.completeSent) at.completeSent = sample();
    },
    onEnd(method, call) {
      const ms = (call.end ?? call.start) - call.start;
      if (method === 'completeUpload') {
        completeMs += ms;
        at.completed = sample();
      }
      if (method === 'createUpload' && !at.created) at.created = sample();
    },
  });
  const states: UploadState[] = [];
  const upload = new Upload(source, {
    transport: tracer.transport,
    name,
    ...nodeUploadOptions,
    parallelism: 4,
  });
  let hashedWhileSending = false;
  const onSnapshot = (snap: UploadSnapshot) => {
    if (!at.hashed && snap.bytesHashed >= snap.size) {
      at.hashed = sample();
      hashedWhileSending = at.firstPut !== undefined;
    }
  };
  upload.on('state', (snap) => {
    states.push(snap.state);
    onSnapshot(snap);
  });
  upload.on('progress', onSnapshot);
  at.start = sample();
  upload.start();
  const file = await upload.result();
  at.end = sample();
  const window = (from: Point | undefined, to: Point | undefined): PhaseSample | undefined =>
    from && to
      ? {
          ms: to.t - from.t,
          appCpu: to.appCpu - from.appCpu,
          sshdCpu: to.sshdCpu - from.sshdCpu,
          clientCpu: to.clientCpu - from.clientCpu,
          appDiskWrite: to.appDiskWrite - from.appDiskWrite,
          appDiskRead: to.appDiskRead - from.appDiskRead,
        }
      : undefined;
  const phases: Partial<Record<Phase, PhaseSample>> = {
    firstChunk: window(at.start, at.firstPut),
    hashing: window(at.start, at.hashed),
    create: window(at.createSent, at.created),
    chunks: window(at.firstPut, at.completeSent ?? at.end),
    complete: window(at.completeSent, at.completed),
    total: window(at.start, at.end),
  };
  if (states.at(-1) !== 'done') throw new Error(`upload ended in ${states.at(-1)}: ${states.join(' → ')}`);
  return {
    fileId: file.id,
    sha1: file.sha1,
    totalMs: at.end.t - at.start.t,
    firstChunkMs: at.firstPut ? at.firstPut.t - at.start.t : null,
    completeMs,
    overlapped: hashedWhileSending,
    states: states.join(' → '),
    calls: tracer.summary(),
    phases,
  };
}
