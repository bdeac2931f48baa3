/**
 * `pnpm bench`: dfs against the real alternatives, on this machine, in one run. Starts what it
 * needs (the app as a separate process, a loopback sshd, MariaDB, Chromium, a tus server), runs
 * each measurement several times, prints a markdown table of medians with the ratio to the
 * alternative, writes it to `.bench/results.md`, and removes everything it started.
 *
 *   DFS_BENCH_QUICK=1   smaller files and fewer runs (well under 5 minutes)
 *   DFS_BENCH_ONLY=hashing,upload,concurrent,web,s3,cluster,startup,sync,history,scale   a subset of the sections
 *   DFS_BENCH_SKIP_WEB_BUILD=1   serve packages/web/dist as it is instead of building it first
 *   DFS_BENCH_APP_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'   extra node flags for the app only
 *   DFS_BENCH_CLI_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/cliprof'   the same for the dfs CLI
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './lib/app.ts';
import { onCleanup, runAll } from './lib/cleanup.ts';
import { addFailure, allFailures, allNotes, renderTable } from './lib/report.ts';
import { GiB, loadAverage, MiB, median, sizeLabel } from './lib/util.ts';
import { benchCluster } from './sections/cluster.ts';
import { benchConcurrent } from './sections/concurrent.ts';
import { benchHashing } from './sections/hashing.ts';
import { benchHistory } from './sections/history.ts';
import { benchS3 } from './sections/s3.ts';
import { benchScale } from './sections/scale.ts';
import { benchStartup } from './sections/startup.ts';
import { benchSync } from './sections/sync.ts';
import { benchUpload, PHASES, type Phase, phaseOverlap, phaseSamples } from './sections/upload.ts';
import { benchWeb } from './sections/web.ts';

const quick = process.env.DFS_BENCH_QUICK === '1';
const only = new Set(
  (process.env.DFS_BENCH_ONLY ?? 'hashing,upload,concurrent,web,s3,cluster,startup,sync,history,scale')
    .split(',')
    .filter(Boolean),
);

const settings = quick
  ? {
      hashBytes: 64 * MiB,
      hashRuns: 3,
      // ≥ 256 MiB: the client core's speculative path (chunks while hashing) starts there.
      uploadBytes: 256 * MiB,
      uploadRuns: 2,
      rangeReads: 100,
      users: 50,
      files: 4,
      userRuns: 2,
      webFiles: 200,
      webRuns: 1,
      s3Bytes: 256 * MiB,
      s3Runs: 1,
      migrateFiles: 16,
      migrateFileBytes: 8 * MiB,
      clusterBytes: 256 * MiB,
      clusterRuns: 1,
      clusterFiles: 4,
      clusterUserRuns: 1,
      syncSmallFiles: 200,
      syncSmallRuns: 1,
      syncBigBytes: 64 * MiB,
      syncBigRuns: 1,
      syncTreeFiles: 2000,
      syncResyncRuns: 3,
      restoreFiles: 1000,
      restoreRuns: 1,
      scaleFolders: 10,
      scalePerFolder: 10_000,
      scaleUsers: 100,
      scaleFilesEach: 100,
      scaleSamples: 100,
    }
  : {
      hashBytes: 256 * MiB,
      hashRuns: 5,
      uploadBytes: GiB,
      uploadRuns: 3,
      rangeReads: 200,
      users: 50,
      files: 20,
      userRuns: 3,
      webFiles: 1000,
      webRuns: 3,
      s3Bytes: GiB,
      s3Runs: 3,
      migrateFiles: 64,
      migrateFileBytes: 16 * MiB,
      clusterBytes: GiB,
      clusterRuns: 3,
      clusterFiles: 20,
      clusterUserRuns: 2,
      syncSmallFiles: 1000,
      syncSmallRuns: 2,
      syncBigBytes: GiB,
      syncBigRuns: 1,
      syncTreeFiles: 10_000,
      syncResyncRuns: 3,
      restoreFiles: 10_000,
      restoreRuns: 2,
      scaleFolders: 100,
      scalePerFolder: 10_000,
      scaleUsers: 1000,
      scaleFilesEach: 1000,
      scaleSamples: 200,
    };

/** The first line a program prints about its version (`ssh -V` prints it on stderr). */
function version(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.error) return `${path.basename(command)}: not found`;
  return `${r.stdout}${r.stderr}`.trim().split('\n')[0] ?? '?';
}

function machine(): string[] {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? '?';
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  return [
    `- CPU: ${model}, nproc ${os.availableParallelism()}`,
    `- memory: ${(memKb / 1024 / 1024).toFixed(1)} GiB`,
    `- kernel: ${os.release()}; node ${process.version}`,
    `- ${version('ssh', ['-V'])}; ${version('/usr/bin/chromium', ['--version'])}; ${version('/usr/sbin/mariadbd', ['--version'])}`,
  ];
}

function phaseTable(bytes: number): string {
  const mb = (n: number) => (n / 1e6).toFixed(0);
  const overlapped = phaseOverlap.filter(Boolean).length;
  const runs = phaseOverlap.length;
  const lines = [
    `| window of the in-process ${sizeLabel(bytes)} upload (medians; windows can overlap) | wall | MB/s | app CPU | sshd CPU | client CPU | app disk writes |`,
    '|---|---|---|---|---|---|---|',
  ];
  const hashingLabel =
    overlapped === runs
      ? 'client hashing, start → last byte hashed (node:crypto) — overlaps the chunk PUTs (speculative)'
      : overlapped === 0
        ? 'client hashing, start → last byte hashed (node:crypto) — before any chunk (hash first)'
        : `client hashing, start → last byte hashed (node:crypto) — overlapped the chunk PUTs in ${overlapped} of ${runs} runs`;
  const labels: Record<Phase, string> = {
    firstChunk: 'start → first chunk PUT sent (time to first chunk)',
    hashing: hashingLabel,
    create: 'POST /api/uploads',
    chunks: 'chunk PUTs (4 parallel) → SFTP node, first PUT sent → POST complete sent',
    complete: 'POST complete (answered)',
    total: 'whole upload, start → done',
  };
  const withRate = new Set<Phase>(['hashing', 'chunks', 'total']);
  for (const p of PHASES) {
    const s = phaseSamples.get(p)!;
    if (s.length === 0) continue;
    const m = (f: (x: (typeof s)[number]) => number) => median(s.map(f));
    const wall = m((x) => x.ms) / 1000;
    const written = m((x) => x.appDiskWrite);
    const pct = p === 'total' ? ` (${((written / bytes) * 100).toFixed(2)} % of the bytes)` : '';
    lines.push(
      `| ${labels[p]} | ${wall.toFixed(2)} s | ${withRate.has(p) ? (bytes / 1e6 / wall).toFixed(0) : ''} | ${m((x) => x.appCpu).toFixed(2)} s | ${m((x) => x.sshdCpu).toFixed(2)} s | ${m((x) => x.clientCpu).toFixed(2)} s | ${mb(written)} MB${pct} |`,
    );
  }
  return lines.join('\n');
}

const started = Date.now();
const loadBefore = loadAverage();

async function main(): Promise<number> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'dfs-bench-'));
  onCleanup('tmp dir', () => rm(tmp, { recursive: true, force: true }));
  console.error(`bench: ${quick ? 'quick' : 'full'} run in ${tmp}; load average ${loadBefore}`);

  const sections: [string, () => Promise<void>][] = [
    [
      'hashing',
      () =>
        benchHashing({ tmp, bytes: settings.hashBytes, runs: settings.hashRuns, browserWorkers: [1, 2, 3] }),
    ],
    [
      'upload',
      () =>
        benchUpload({
          tmp,
          bytes: settings.uploadBytes,
          runs: settings.uploadRuns,
          rangeReads: settings.rangeReads,
        }),
    ],
    [
      'concurrent',
      () =>
        benchConcurrent({
          tmp,
          users: settings.users,
          filesPerUser: settings.files,
          runs: settings.userRuns,
          databases: ['sqlite', 'mariadb'],
        }),
    ],
    ['web', () => benchWeb({ tmp, files: settings.webFiles, runs: settings.webRuns })],
    [
      's3',
      () =>
        benchS3({
          tmp,
          bytes: settings.s3Bytes,
          runs: settings.s3Runs,
          migrateFiles: settings.migrateFiles,
          migrateFileBytes: settings.migrateFileBytes,
        }),
    ],
    [
      'cluster',
      () =>
        benchCluster({
          tmp,
          bytes: settings.clusterBytes,
          runs: settings.clusterRuns,
          users: settings.users,
          filesPerUser: settings.clusterFiles,
          userRuns: settings.clusterUserRuns,
        }),
    ],
    ['startup', () => benchStartup({ tmp, runs: quick ? 2 : 5 })],
    [
      'sync',
      () =>
        benchSync({
          tmp,
          smallFiles: settings.syncSmallFiles,
          smallRuns: settings.syncSmallRuns,
          bigBytes: settings.syncBigBytes,
          bigRuns: settings.syncBigRuns,
          treeFiles: settings.syncTreeFiles,
          resyncRuns: settings.syncResyncRuns,
        }),
    ],
    [
      'history',
      () =>
        benchHistory({
          tmp,
          files: settings.restoreFiles,
          runs: settings.restoreRuns,
          databases: ['sqlite', 'mariadb'],
        }),
    ],
    [
      'scale',
      () =>
        benchScale({
          tmp,
          folders: settings.scaleFolders,
          perFolder: settings.scalePerFolder,
          users: settings.scaleUsers,
          filesEach: settings.scaleFilesEach,
          samples: settings.scaleSamples,
        }),
    ],
  ];
  for (const [name, fn] of sections) {
    if (!only.has(name)) continue;
    const t0 = Date.now();
    console.error(`bench: --- ${name} ---`);
    try {
      await fn();
    } catch (error) {
      addFailure(`${name}: ${(error as Error).stack ?? error}`);
    }
    console.error(`bench: ${name} took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  await runAll();
  return writeReport(false);
}

/** The results so far: at the end, or when the run is interrupted (a signal keeps what it measured). */
async function writeReport(interrupted: boolean): Promise<number> {
  const took = ((Date.now() - started) / 1000).toFixed(0);
  const failures = allFailures();
  const report = [
    `## dfs bench — ${quick ? 'quick (DFS_BENCH_QUICK=1)' : 'full'} run${interrupted ? ' (interrupted: the sections it finished)' : ''}, ${new Date().toISOString()}`,
    '',
    ...machine(),
    `- load average before / after: ${loadBefore} / ${loadAverage()}; took ${took} s`,
    '',
    renderTable(),
    '',
    ...(phaseSamples.get('total')!.length > 0 ? [phaseTable(settings.uploadBytes), ''] : []),
    ...allNotes().map((n) => `- ${n}`),
    '- "dfs vs alternative" > 1× means dfs did better (faster, or less memory), < 1× worse.',
    ...(failures.length > 0
      ? ['', `**FAILED** (${failures.length}):`, ...failures.map((f) => `- ${f}`)]
      : []),
    '',
  ].join('\n');
  process.stdout.write(`\n${report}`);
  const outDir = path.join(REPO_ROOT, '.bench');
  await mkdir(outDir, { recursive: true });
  await writeFile(path.join(outDir, 'results.md'), report);
  console.error(
    `bench: wrote .bench/results.md (${took} s)${failures.length ? `; ${failures.length} FAILED` : ''}`,
  );
  return failures.length > 0 ? 1 : 0;
}

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    console.error(`bench: ${signal}: writing what was measured, cleaning up`);
    void writeReport(true)
      .catch(() => 0)
      .then(() => runAll())
      .finally(() => process.exit(code));
  });
}

// A stray error anywhere (a child's pipe, a socket) must still stop what the bench started.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (error: unknown) => {
    console.error(`bench: ${event}:`, error);
    void runAll().finally(() => process.exit(1));
  });
}

main().then(
  async (code) => {
    await runAll();
    process.exit(code);
  },
  async (error: unknown) => {
    console.error('bench: failed:', error);
    await runAll();
    process.exit(1);
  },
);
