import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.ts';

const run = promisify(execFile);

/**
 * A real single-node Ceph on 127.0.0.1 — one monitor, one OSD, one RADOS Gateway — from Debian's
 * ceph-mon, ceph-osd and radosgw packages, everything (config, data, sockets, logs) in one
 * throwaway directory. No systemd, no cephx: the daemons run in the foreground as our children.
 */
export interface CephHandle {
  /** `http://127.0.0.1:<port>` of the gateway. */
  endpoint: string;
  port: number;
  accessKey: string;
  secretKey: string;
  /** The gateway's process (radosgw). */
  pid: number;
  /** Every daemon's process: monitor, OSD and gateway. */
  pids: number[];
  /** A storage node URL for `bucket` (made on first use by the node). */
  nodeUrl(bucket: string, params?: Record<string, string>): string;
  stop(): Promise<void>;
}

export interface CephOptions {
  /**
   * Where the OSD keeps objects: `memstore` (RAM, the tests) or `bluestore` on a sparse file
   * (the bench's gigabytes). Default memstore.
   */
  store?: 'memstore' | 'bluestore';
  /** The memstore's size or the bluestore file's. Default 3 GiB. */
  bytes?: number;
  /** Where the cluster's throwaway directory goes; default the system temp dir. Keep it short:
   * admin sockets live there and a socket path must stay under 108 bytes. */
  parentDir?: string;
}

const PROGRAMS = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'monmaptool', 'ceph-authtool', 'ceph'];

function findProgram(name: string): string {
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/sbin']) {
    const p = path.join(dir || '.', name);
    if (existsSync(p)) return p;
  }
  throw new Error(
    `${name} not found: install ceph-mon, ceph-osd and radosgw (scripts/lib/ensure-system-deps.sh)`,
  );
}

/** Whether every program startCeph runs is installed (found as startCeph would find it). */
export function cephInstalled(): boolean {
  try {
    for (const program of PROGRAMS) findProgram(program);
    return true;
  } catch {
    return false;
  }
}

export async function startCeph(options: CephOptions = {}): Promise<CephHandle> {
  const bin = Object.fromEntries(PROGRAMS.map((p) => [p, findProgram(p)]));
  const dir = await mkdtemp(path.join(options.parentDir ?? os.tmpdir(), 'ceph-'));
  for (const sub of ['run', 'log', 'mon', 'osd', 'rgw']) await mkdir(path.join(dir, sub));
  const [monPort, port] = [await freePort(), await freePort()];
  const conf = path.join(dir, 'ceph.conf');
  const keyring = path.join(dir, 'keyring');
  const fsid = randomUUID();
  const store = options.store ?? 'memstore';
  const bytes = options.bytes ?? 3 * 1024 ** 3;
  await writeFile(
    conf,
    [
      '[global]',
      `fsid = ${fsid}`,
      `mon host = v2:127.0.0.1:${monPort}`,
      // Loopback only, one throwaway cluster: no cephx.
      'auth cluster required = none',
      'auth service required = none',
      'auth client required = none',
      'ms bind ipv6 = false',
      `run dir = ${dir}/run`,
      `admin socket = ${dir}/run/$name.asok`,
      `log file = ${dir}/log/$name.log`,
      `pid file = ${dir}/run/$name.pid`,
      `keyring = ${keyring}`,
      'osd pool default size = 1',
      'osd pool default min size = 1',
      'mon allow pool size one = true',
      'mon warn on pool no redundancy = false',
      'osd crush chooseleaf type = 0',
      'osd pool default pg num = 8',
      'osd pool default pgp num = 8',
      'osd pool default pg autoscale mode = off',
      // The disk under a CI checkout may be fuller than the monitor's defaults like.
      'mon data avail warn = 1',
      'mon data avail crit = 0',
      '[mon.a]',
      `mon data = ${dir}/mon`,
      '[osd.0]',
      `osd data = ${dir}/osd`,
      `osd objectstore = ${store}`,
      ...(store === 'memstore'
        ? [`memstore device bytes = ${bytes}`]
        : [
            `bluestore block path = ${dir}/osd-block`,
            `bluestore block size = ${bytes}`,
            'bluestore block create = true',
          ]),
      '[client.rgw.a]',
      `rgw frontends = beast endpoint=127.0.0.1:${port}`,
      `rgw data = ${dir}/rgw`,
      // Without it radosgw loops on "get_initial_auth_request returned -13".
      'ms mon client mode = crc secure',
      '',
    ].join('\n'),
  );
  const c = ['-c', conf];
  const daemons: ChildProcess[] = [];
  const daemon = (program: string, args: string[]) => {
    const child = spawn(bin[program] as string, [...c, ...args, '-f'], { stdio: 'ignore' });
    daemons.push(child);
    return child;
  };
  const stop = async () => {
    await Promise.all(
      daemons.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
            child.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
    await rm(dir, { recursive: true, force: true });
  };
  const logs = async () => {
    const out: string[] = [];
    for (const name of ['mon.a', 'osd.0', 'client.rgw.a']) {
      const text = await readFile(path.join(dir, 'log', `${name}.log`), 'utf8').catch(() => '');
      out.push(`--- ${name}\n${text.split('\n').slice(-15).join('\n')}`);
    }
    return out.join('\n');
  };

  try {
    await run(bin['ceph-authtool'] as string, [
      '--create-keyring',
      keyring,
      '--gen-key',
      '-n',
      'mon.',
      '--cap',
      'mon',
      'allow *',
    ]);
    const monmap = path.join(dir, 'monmap');
    await run(bin.monmaptool as string, [
      '--create',
      '--addv',
      'a',
      `[v2:127.0.0.1:${monPort}]`,
      '--fsid',
      fsid,
      monmap,
    ]);
    await run(bin['ceph-mon'] as string, [
      ...c,
      '--mkfs',
      '-i',
      'a',
      '--monmap',
      monmap,
      '--keyring',
      keyring,
    ]);
    daemon('ceph-mon', ['-i', 'a']);
    const osdUuid = randomUUID();
    await retry(
      () => run(bin.ceph as string, [...c, '--connect-timeout', '5', 'osd', 'new', osdUuid]),
      20_000,
    );
    await run(bin['ceph-osd'] as string, [...c, '-i', '0', '--mkfs', '--osd-uuid', osdUuid]);
    daemon('ceph-osd', ['-i', '0']);
    const rgw = daemon('radosgw', ['-n', 'client.rgw.a']);
    const endpoint = `http://127.0.0.1:${port}`;
    await retry(async () => {
      for (const child of daemons) {
        if (child.exitCode !== null) throw new Error(`a ceph daemon exited (${child.exitCode})`);
      }
      const res = await fetch(endpoint);
      await res.arrayBuffer();
    }, 60_000);
    const accessKey = `DFS${randomBytes(8).toString('hex').toUpperCase()}`;
    const secretKey = randomBytes(24).toString('base64url');
    await run(bin['radosgw-admin'] as string, [
      ...c,
      'user',
      'create',
      '--uid=dfs-test',
      '--display-name=dfs test',
      `--access-key=${accessKey}`,
      `--secret=${secretKey}`,
    ]);
    return {
      endpoint,
      port,
      pid: rgw.pid ?? 0,
      pids: daemons.map((child) => child.pid ?? 0),
      accessKey,
      secretKey,
      nodeUrl: (bucket, params = {}) =>
        `s3://${accessKey}:${encodeURIComponent(secretKey)}@127.0.0.1:${port}/${bucket}?${new URLSearchParams({ tls: '0', ...params })}`,
      stop,
    };
  } catch (err) {
    const tail = await logs();
    await stop();
    throw new Error(`ceph did not start: ${(err as Error).message}\n${tail}`);
  }
}

async function retry<T>(fn: () => Promise<T>, withinMs: number): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
