/**
 * 10. Scale-out through `pnpm cluster`'s pieces (nginx from deploy/nginx.conf, MariaDB primary +
 * GTID replica, three SFTP nodes): a big download sent by nginx itself (X-Accel-Redirect) vs
 * OpenSSH `sftp get` of the same object vs the app's own streaming path; many users with two app
 * instances vs one; and the replica's lag while those users upload.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DfsApi, Upload } from '@dfs/client';
import { fileSourceFromPath, nodeUploadOptions } from '@dfs/client/node';
import { type RunningCluster, startCluster } from '@dfs/cluster';
import { sampleReplicaLag } from '@dfs/cluster/mariadb';
import { onCleanup } from '../lib/cleanup.ts';
import { addFailure, addNote, addRow } from '../lib/report.ts';
import { sftpBatch } from '../lib/sshd.ts';
import { percentile, sha1OfFile, sizeLabel, writeRandomFile } from '../lib/util.ts';
import { makeUserFiles, manyUsersRun } from './concurrent.ts';

export interface ClusterBenchOptions {
  tmp: string;
  bytes: number;
  runs: number;
  users: number;
  filesPerUser: number;
  userRuns: number;
}

const APP_ENV = {
  // One address signs up and in every bench user; scrubbing would compete for the disk.
  DFS_SIGNIN_RATE_LIMIT: '100000',
  DFS_SIGNUP_RATE_LIMIT: '100000',
  DFS_UPLOAD_LOOKUP_RATE_LIMIT: '100000',
  DFS_SCRUB_BYTES_PER_SECOND: '0',
};

async function userAt(url: string, username: string): Promise<DfsApi> {
  const password = 'bench-password-1234';
  const anonymous = new DfsApi({ baseUrl: url, credentials: 'omit' });
  await anonymous.signup(username, password);
  const { token } = await anonymous.signin(username, password);
  return new DfsApi({ baseUrl: url, token, credentials: 'omit' });
}

async function start(apps: number): Promise<{ cluster: RunningCluster; stop: () => Promise<void> }> {
  const cluster = await startCluster({
    apps,
    s3: false,
    built: true,
    env: APP_ENV,
    log: (line) => console.error(`bench: cluster (${apps} app${apps === 1 ? '' : 's'}): ${line}`),
  });
  return { cluster, stop: onCleanup(`cluster with ${apps} apps`, () => cluster.stop()) };
}

/** Seconds to read a response body to its end, checking its SHA-1 on the way. */
async function timedBody(response: Promise<Response>, sha1: string, label: string): Promise<number | null> {
  const started = performance.now();
  const res = await response;
  const hash = createHash('sha1');
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) hash.update(part);
  const seconds = (performance.now() - started) / 1000;
  if (!res.ok || hash.digest('hex') !== sha1) {
    addFailure(`cluster: ${label} answered ${res.status} with bytes that do not hash to the source`);
    return null;
  }
  return seconds;
}

export async function benchCluster(o: ClusterBenchOptions): Promise<void> {
  // ---- 10a: one big download, three ways ----
  const { cluster, stop } = await start(2);
  try {
    const api = await userAt(cluster.info.url, 'downloads');
    const src = path.join(o.tmp, 'cluster-big.bin');
    await writeRandomFile(src, o.bytes);
    const sha1 = await sha1OfFile(src);
    const upload = new Upload(await fileSourceFromPath(src), {
      transport: api,
      ...nodeUploadOptions,
    });
    upload.start();
    const file = await upload.result();
    const held = cluster.info.nodes.find(
      (node) =>
        node.dir && existsSync(path.join(node.dir, 'objects', sha1.slice(0, 2), sha1.slice(2, 4), sha1)),
    );
    if (!held?.sftp || !held.dir) return addFailure('cluster: the big file is on no SFTP node');
    const object = path.join(held.dir, 'objects', sha1.slice(0, 2), sha1.slice(2, 4), sha1);
    const out = path.join(o.tmp, 'cluster-get.bin');
    const batch = path.join(o.tmp, 'cluster-sftp-batch');
    await writeFile(batch, `get ${object} ${out}\n`);
    const v = { accel: [] as number[], streamed: [] as number[], sftp: [] as number[] };
    for (let r = 0; r < o.runs; r++) {
      console.error(`bench: cluster download ${sizeLabel(o.bytes)}, run ${r + 1}/${o.runs}`);
      const accel = await timedBody(api.download(file.id), sha1, 'the X-Accel download');
      // If-Range keeps the download on the app's own path (nginx only proxies the stream).
      const streamed = await timedBody(
        fetch(`${cluster.info.url}/api/files/${file.id}/content`, {
          headers: { authorization: `Bearer ${api.token}`, range: 'bytes=0-', 'if-range': `"${sha1}"` },
        }),
        sha1,
        'the streamed download',
      );
      const get = await sftpBatch(held.sftp, batch);
      if (accel === null || streamed === null) return;
      if ((await sha1OfFile(out)) !== sha1) return addFailure('cluster: sftp get returned other bytes');
      await rm(out);
      v.accel.push(accel);
      v.streamed.push(streamed);
      v.sftp.push(get.ms / 1000);
    }
    // The access log's final URI tells who sent the bytes: an internal /_dfs/ location is nginx.
    const lines = (await readFile(cluster.info.nginx.accessLog, 'utf8'))
      .split('\n')
      .filter((line) => line.includes(` /api/files/${file.id}/content `));
    const byNginx = lines.filter((line) => line.split(' ')[3]?.startsWith('/_dfs/')).length;
    addNote(
      `10 cluster: of ${lines.length} downloads of the big file through nginx, ${byNginx} were sent by nginx from ` +
        `${held.name}'s directory (X-Accel-Redirect) and ${lines.length - byNginx} streamed by the app (If-Range)`,
    );
    const mb = o.bytes / 1e6;
    for (const [name, seconds] of [
      ['OpenSSH `sftp get` of the same object', v.sftp],
      ["the app's own verified streaming path", v.streamed],
    ] as const) {
      addRow({
        group: '10 cluster',
        what: `${sizeLabel(o.bytes)} download through nginx, sent by nginx (X-Accel-Redirect)`,
        unit: 'MB/s',
        values: v.accel.map((s) => mb / s),
        higherIsBetter: true,
        alt: { name, values: seconds.map((s) => mb / s) },
      });
    }
  } finally {
    await stop();
    await rm(path.join(o.tmp, 'cluster-big.bin'), { force: true });
  }

  // ---- 10b: many users, one app instance vs two, and the replica's lag meanwhile ----
  const throughput = new Map<number, number[]>();
  const lags: number[] = [];
  for (const apps of [1, 2]) {
    const { cluster: c, stop: stopCluster } = await start(apps);
    const values: number[] = [];
    try {
      for (let r = 0; r < o.userRuns; r++) {
        console.error(
          `bench: cluster ${o.users} users × ${o.filesPerUser} files, ${apps} app(s), run ${r + 1}/${o.userRuns}`,
        );
        const apis = [];
        for (let i = 0; i < o.users; i += 10) {
          const batch = Array.from({ length: Math.min(10, o.users - i) }, (_, j) =>
            userAt(c.info.url, `a${apps}-r${r}-u${i + j}`),
          );
          apis.push(...(await Promise.all(batch)));
        }
        const files = makeUserFiles(apis.length, o.filesPerUser);
        const sampler = apps === 2 ? sampleReplicaLag(c.info.db.primary, c.info.db.replica, 100) : null;
        const result = await manyUsersRun(apis, files);
        if (sampler) lags.push(...(await sampler.stop()));
        if (!result) return;
        values.push(result.filesPerSecond);
      }
    } finally {
      await stopCluster();
    }
    throughput.set(apps, values);
  }
  addRow({
    group: '10 cluster',
    what: `${o.users} users × ${o.filesPerUser} files (64 KiB–4 MiB) through nginx, 2 app instances, MariaDB + replica, R=2 on SFTP`,
    unit: 'files/s',
    values: throughput.get(2) ?? [],
    higherIsBetter: true,
    alt: { name: 'the same with 1 app instance', values: throughput.get(1) ?? [] },
  });
  if (lags.length > 0) {
    addRow({
      group: '10 cluster',
      what: `replica lag during the 2-instance runs, p50 (${lags.length} samples, MASTER_GTID_WAIT every 100 ms)`,
      unit: 'ms',
      values: [percentile(lags, 50)],
    });
    addRow({
      group: '10 cluster',
      what: 'replica lag during the 2-instance runs, p99',
      unit: 'ms',
      values: [percentile(lags, 99)],
    });
  }
}
