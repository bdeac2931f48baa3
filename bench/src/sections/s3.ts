/**
 * Section 9: S3 nodes on a real Ceph RGW (bluestore on a sparse file, loopback). A 1 GiB upload
 * through dfs (CLI → app → one RGW node, chunks as multipart parts) against the AWS SDK's own
 * `Upload` (lib-storage) of the same file straight to the same RGW; downloads through dfs with
 * the presigned redirect and without it (the app streams and verifies every block) against a
 * direct GetObject; and a migration: an SFTP node drained into the RGW node, MB/s.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload as SdkUpload } from '@aws-sdk/lib-storage';
import { DfsApi } from '@dfs/client';
import { startCeph } from '@dfs/cluster/ceph';
import { REPO_ROOT, startApp } from '../lib/app.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { addFailure, addNote, addRow } from '../lib/report.ts';
import { startBenchSshd } from '../lib/sshd.ts';
import {
  freshenHead,
  GiB,
  MiB,
  machineBusySeconds,
  run,
  sha1OfFile,
  sizeLabel,
  sleep,
  writeRandomFile,
} from '../lib/util.ts';

// The SDK is pinned; its notice about releases after January 2027 needing Node 22 is not news here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// The CLI as it ships: the bundle scripts/bench.sh builds, run by plain node.
const CLI = path.join(REPO_ROOT, 'packages/client/dist/cli.js');
const SECRET = 'bench-secret-shared-by-the-apps-of-one-database';

export interface S3BenchOptions {
  tmp: string;
  bytes: number;
  runs: number;
  /** Objects and their size for the migration measurement. */
  migrateFiles: number;
  migrateFileBytes: number;
}

async function sha1OfStream(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash('sha1');
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest('hex');
}

export async function benchS3(o: S3BenchOptions): Promise<void> {
  const label = sizeLabel(o.bytes);
  const src = path.join(o.tmp, 's3-big.bin');
  await writeRandomFile(src, o.bytes);
  const t0 = performance.now();
  const ceph = await startCeph({ store: 'bluestore', bytes: 4 * o.bytes + 8 * GiB });
  // Stopped when the section ends: an idle Ceph would still take CPU from the sections after it.
  const stopCeph = onCleanup('ceph', () => ceph.stop());
  addNote(
    `9 s3: single-node Ceph 16 (mon, osd on bluestore in a sparse file, radosgw) started in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const s3 = new S3Client({
    endpoint: ceph.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: ceph.accessKey, secretAccessKey: ceph.secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const stopClient = onCleanup('s3 client', () => s3.destroy());
  try {
    // The first bucket takes a fresh RGW a few seconds (its pools are made): not timed.
    await s3.send(new CreateBucketCommand({ Bucket: 'direct' }));

    const dbUrl = `sqlite://${path.join(o.tmp, 's3-db.sqlite')}`;
    const startS3App = (presign: '0' | '1', dir: string) =>
      startApp({
        dataDir: path.join(o.tmp, dir),
        nodes: ceph.nodeUrl('dfs-bench', { presign }),
        dbUrl,
        // Both apps read the same database: the same secret (it peppers the password hashes).
        env: { DFS_HEARTBEAT_SECONDS: '2', DFS_SECRET: SECRET },
      });
    let app = await startS3App('1', 's3-app-a');
    const api = await app.user('bench-admin');
    const cliEnv = {
      ...process.env,
      DFS_SERVER: app.url,
      DFS_TOKEN: api.token ?? '',
      DFS_CLIENT_CONFIG: path.join(o.tmp, 's3-cli-config.json'),
    };
    const cli = (args: string[]) => run(process.execPath, [CLI, ...args], { env: cliEnv, cwd: REPO_ROOT });

    // Warm-up, not counted: the node's bucket, connections, both paths once.
    {
      const small = path.join(o.tmp, 's3-warm.bin');
      await writeRandomFile(small, 16 * MiB);
      for (let i = 0; i < 50 && !(await api.listNodes()).items.every((n) => n.status === 'up'); i++)
        await sleep(200);
      await cli(['upload', small, '--id']);
      await new SdkUpload({
        client: s3,
        params: { Bucket: 'direct', Key: 'warm', Body: createReadStream(small) },
      }).done();
    }

    const v = {
      sdkUp: [] as number[],
      dfsUp: [] as number[],
      redirectDown: [] as number[],
      directGet: [] as number[],
      streamedDown: [] as number[],
      cpuSdkUp: [] as number[],
      cpuDfsUp: [] as number[],
      busyDfsUp: [] as number[],
    };
    const stored: Array<{ id: string; sha1: string }> = [];
    for (let r = 0; r < o.runs; r++) {
      console.error(`bench: s3 run ${r + 1}/${o.runs} (${label})`);
      await freshenHead(src);
      const sha1 = await sha1OfFile(src);
      const key = `big-${r}`;
      let t = performance.now();
      const sdkBusy0 = machineBusySeconds();
      await new SdkUpload({
        client: s3,
        params: { Bucket: 'direct', Key: key, Body: createReadStream(src, { highWaterMark: MiB }) },
        partSize: 8 * MiB,
        queueSize: 4,
      }).done();
      v.sdkUp.push((performance.now() - t) / 1000);
      v.cpuSdkUp.push(machineBusySeconds() - sdkBusy0);
      const head = await s3.send(new HeadObjectCommand({ Bucket: 'direct', Key: key }));
      if (Number(head.ContentLength) !== o.bytes)
        return addFailure(`AWS SDK Upload stored ${head.ContentLength} bytes`);

      const dfsBusy0 = machineBusySeconds();
      const up = await cli(['upload', src, '--id']);
      const dfsBusy = machineBusySeconds() - dfsBusy0;
      v.cpuDfsUp.push(dfsBusy);
      v.busyDfsUp.push((dfsBusy / (os.cpus().length * (up.ms / 1000))) * 100);
      const file = (await api.getFile(up.stdout.trim())).file;
      if (file.sha1 !== sha1)
        return addFailure(`dfs upload to RGW registered ${file.sha1}, source is ${sha1}`);
      v.dfsUp.push(up.ms / 1000);
      stored.push({ id: file.id, sha1 });

      t = performance.now();
      const res = await api.download(file.id);
      const got = await sha1OfStream(res.body as unknown as AsyncIterable<Uint8Array>);
      if (!res.url.startsWith(ceph.endpoint))
        return addFailure(`the download was not redirected to the RGW (${res.url.slice(0, 60)})`);
      if (got !== sha1) return addFailure('redirected download: SHA-1 differs');
      v.redirectDown.push((performance.now() - t) / 1000);

      t = performance.now();
      const direct = await s3.send(new GetObjectCommand({ Bucket: 'direct', Key: key }));
      if ((await sha1OfStream(direct.Body as Readable)) !== sha1)
        return addFailure('direct GetObject: SHA-1 differs');
      v.directGet.push((performance.now() - t) / 1000);
    }

    // The same bucket behind an app that does not presign: every byte through the app, verified.
    await app.stop();
    app = await startS3App('0', 's3-app-b');
    const viaApp = new DfsApi({ baseUrl: app.url, credentials: 'omit' });
    const { token } = await viaApp.signin('bench-admin', 'bench-password-1234');
    const streamingApi = new DfsApi({ baseUrl: app.url, token, credentials: 'omit' });
    for (let i = 0; i < 50 && !(await streamingApi.listNodes()).items.every((n) => n.status === 'up'); i++)
      await sleep(200);
    for (const file of stored) {
      const t = performance.now();
      const res = await streamingApi.download(file.id);
      if (res.redirected) return addFailure('presign=0 still redirected');
      if ((await sha1OfStream(res.body as unknown as AsyncIterable<Uint8Array>)) !== file.sha1) {
        return addFailure('streamed download from the RGW node: SHA-1 differs');
      }
      v.streamedDown.push((performance.now() - t) / 1000);
    }
    await app.stop();

    const sdk = {
      name: 'AWS SDK `Upload` (lib-storage, 8 MiB parts, 4 in flight) straight to the same RGW',
      values: v.sdkUp,
    };
    const get = {
      name: 'direct GetObject of the same bytes (AWS SDK, SHA-1 while streaming)',
      values: v.directGet,
    };
    addRow({
      group: '9 s3',
      what: `dfs CLI upload, ${label} → one RGW node (wall)`,
      unit: 's',
      values: v.dfsUp,
      alt: sdk,
    });
    addRow({ group: '9 s3', what: `AWS SDK Upload, ${label} → RGW (wall)`, unit: 's', values: v.sdkUp });
    addRow({
      group: '9 s3',
      what: `machine CPU seconds for the ${label} dfs CLI upload → RGW (all processes + kernel, /proc/stat)`,
      unit: 's',
      values: v.cpuDfsUp,
      alt: { name: 'the same for the AWS SDK `Upload` straight to RGW', values: v.cpuSdkUp },
    });
    addRow({
      group: '9 s3',
      what: `cores busy during the ${label} dfs CLI upload → RGW`,
      unit: '%',
      values: v.busyDfsUp,
    });
    addRow({
      group: '9 s3',
      what: `dfs download, ${label}, 302 to a presigned URL (SHA-1 checked)`,
      unit: 's',
      values: v.redirectDown,
      alt: get,
    });
    addRow({
      group: '9 s3',
      what: `dfs download, ${label}, streamed and verified by the app (presign=0)`,
      unit: 's',
      values: v.streamedDown,
      alt: get,
    });
    await benchMigration(o, ceph);
  } finally {
    await stopClient();
    await stopCeph();
  }
}

/** An SFTP node full of files, then drained into an RGW node by the running app; MB/s. */
async function benchMigration(o: S3BenchOptions, ceph: Awaited<ReturnType<typeof startCeph>>): Promise<void> {
  const sshd = await startBenchSshd(o.tmp);
  const nodeDir = await sshd.dir('migrate');
  const sftpUrl = sshd.handle.url('key', nodeDir);
  const dbUrl = `sqlite://${path.join(o.tmp, 'migrate-db.sqlite')}`;
  let app = await startApp({
    dataDir: path.join(o.tmp, 'migrate-a'),
    nodes: sftpUrl,
    dbUrl,
    env: { DFS_SECRET: SECRET },
  });
  const api = await app.user('bench-admin');
  const dir = path.join(o.tmp, 'migrate-src');
  await mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < o.migrateFiles; i++) {
    paths.push(path.join(dir, `f${i}.bin`));
    await writeRandomFile(paths[i] as string, o.migrateFileBytes);
  }
  const env = {
    ...process.env,
    DFS_SERVER: app.url,
    DFS_TOKEN: api.token ?? '',
    DFS_CLIENT_CONFIG: path.join(o.tmp, 'mig-cli.json'),
  };
  const up = await run(process.execPath, [CLI, 'upload', ...paths], {
    env,
    cwd: REPO_ROOT,
  });
  if (up.code !== 0) return addFailure(`migration: upload failed: ${up.stderr.slice(-300)}`);
  await app.stop();

  // The same database, now with the RGW node too and the SFTP node to drain: the documented way.
  app = await startApp({
    dataDir: path.join(o.tmp, 'migrate-b'),
    nodes: `${sftpUrl},${ceph.nodeUrl('dfs-migrate')}`,
    dbUrl,
    env: { DFS_DRAIN_NODES: sftpUrl, DFS_HEARTBEAT_SECONDS: '1', DFS_SECRET: SECRET },
  });
  const viaApp = new DfsApi({ baseUrl: app.url, credentials: 'omit' });
  const { token } = await viaApp.signin('bench-admin', 'bench-password-1234');
  const admin = new DfsApi({ baseUrl: app.url, token, credentials: 'omit' });
  const started = performance.now();
  let first: { at: number; bytes: number } | null = null;
  const deadline = started + 30 * 60_000;
  for (;;) {
    const node = (await admin.listNodes()).items.find((n) => n.kind === 'sftp');
    const drain = node?.drain;
    if (drain && drain.movedBytes > 0 && !first) first = { at: performance.now(), bytes: drain.movedBytes };
    if (drain && drain.remainingObjects === 0) {
      const total = drain.totalBytes;
      const secs = (performance.now() - started) / 1000;
      addRow({
        group: '9 s3',
        what: `migration: drain an SFTP node into an RGW node, ${drain.totalObjects} objects, ${sizeLabel(total)} (start → last copy verified; repair job in the app)`,
        unit: 'MB/s',
        values: [total / 1e6 / secs],
        higherIsBetter: true,
      });
      addNote(
        `9 s3 migration: ${drain.totalObjects} objects moved in ${secs.toFixed(1)} s; first copy after ${first ? ((first.at - started) / 1000).toFixed(1) : '?'} s; the app's own rate: ${(drain.bytesPerSecond / 1e6).toFixed(1)} MB/s`,
      );
      break;
    }
    if (performance.now() > deadline) return addFailure('migration did not finish within 30 minutes');
    await sleep(250);
  }
  await app.stop();
  await sshd.stop();
}
