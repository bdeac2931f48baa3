import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { ServerProcess } from './app-process.ts';
import { type CephHandle, cephInstalled, startCeph } from './ceph.ts';
import { connectionOptions, type RunningMariaDb, startMariaDb, startReplication } from './mariadb.ts';
import { type RunningNginx, startNginx } from './nginx.ts';
import { freePort } from './ports.ts';
import { type SshdHandle, startSshd } from './sshd.ts';

const WEB_DIST = path.resolve(import.meta.dirname, '../../web/dist');
const SFTP_NODES = 3;

/** What `pnpm cluster` writes to `<dir>/cluster.json`; passwords are inside the URLs. */
export interface ClusterInfo {
  url: string;
  dir: string;
  apps: { url: string; pid: number; log: string }[];
  nginx: { pid: number; accessLog: string };
  db: { primary: string; replica: string; pids: number[] };
  /** Every program the cluster runs besides the apps and nginx (databases, sshd, Ceph's daemons). */
  pids: number[];
  /** SFTP nodes also say where their files are and how OpenSSH's `sftp` gets in (key auth). */
  nodes: {
    name: string;
    url: string;
    pid: number;
    dir?: string;
    sftp?: { user: string; port: number; keyFile: string };
  }[];
}

export interface ClusterOptions {
  /** Everything the cluster writes; default a new temp dir. Removed on stop unless `keep`. */
  dir?: string;
  keep?: boolean;
  /** Add a Ceph RGW node (default: when Ceph's programs are installed). */
  s3?: boolean;
  /** Port for nginx; default a free one. */
  port?: number;
  /** App instances behind nginx (default 2). */
  apps?: number;
  /** Extra DFS_* settings for every app instance. */
  env?: Record<string, string>;
  /** Run the server bundle (dist/main.js) rather than the sources through tsx. */
  built?: boolean;
  log?: (line: string) => void;
}

export interface RunningCluster {
  info: ClusterInfo;
  apps: ServerProcess[];
  stop(): Promise<void>;
}

/**
 * A dfs cluster on 127.0.0.1, every piece a real program: a MariaDB primary and its GTID replica,
 * three OpenSSH SFTP nodes, a Ceph RGW node, two app instances (with the replica for reads, and
 * nginx serving the SFTP nodes' directories), and nginx in front rendered from deploy/nginx.conf.
 * What started is stopped again if a later piece fails.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<RunningCluster> {
  const log = options.log ?? (() => {});
  const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'dfs-cluster-')));
  await mkdir(dir, { recursive: true });
  // The SFTP user and nginx's workers walk down into the node directories from here.
  await chmod(dir, 0o755);
  if (!existsSync(path.join(WEB_DIST, 'index.html'))) {
    throw new Error('the web app is not built: run `pnpm --filter @dfs/web build` first');
  }
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    stops.length = 0;
  };
  try {
    log('starting MariaDB primary and replica');
    const [primary, replica] = await Promise.all([
      startMariaDb({ serverId: 1, parentDir: dir }),
      startMariaDb({ serverId: 2, parentDir: dir }),
    ]);
    stops.push(
      () => primary.stop(),
      () => replica.stop(),
    );
    await startReplication(primary, replica);
    const dbUrl = await createDatabase(primary, 'dfs');
    const readUrl = withDatabase(replica.url, 'dfs');

    log(`starting ${SFTP_NODES} SFTP nodes`);
    const sshds: SshdHandle[] = [];
    for (let i = 0; i < SFTP_NODES; i++) {
      const sshd = await startSshd({ parentDir: dir });
      stops.push(() => sshd.stop());
      sshds.push(sshd);
    }
    let ceph: CephHandle | null = null;
    if (options.s3 ?? cephInstalled()) {
      log('starting Ceph (mon, osd, radosgw)');
      ceph = await startCeph({ parentDir: dir });
      stops.push(() => ceph!.stop());
    }

    const nodes: ClusterInfo['nodes'] = sshds.map((sshd, i) => ({
      name: `sftp${i + 1}`,
      url: sshd.url('password'),
      pid: sshd.pid,
      dir: sshd.root,
      sftp: { user: sshd.username, port: sshd.port, keyFile: sshd.privateKeyPath },
    }));
    if (ceph) nodes.push({ name: 'rgw', url: ceph.nodeUrl('dfs'), pid: ceph.pid });
    const accel = sshds.map((sshd, i) => ({
      location: `/_dfs/sftp${i + 1}/`,
      dir: sshd.root,
      node: nodes[i]!.url,
    }));

    const nginxPort = options.port ?? (await freePort());
    const url = `http://127.0.0.1:${nginxPort}`;
    const shared = {
      DFS_DB_URL: dbUrl,
      DFS_DB_READ_URL: readUrl,
      DFS_NODES: nodes.map((node) => node.url).join(','),
      DFS_REPLICAS: '2',
      DFS_ACCEL_REDIRECT: accel.map((a) => `${a.location}=${a.node}`).join(','),
      // Every instance must share the secret (share passwords, upload challenges).
      DFS_SECRET: randomBytes(32).toString('base64url'),
      // No DFS_PUBLIC_URL, as in the compose file: links and tus Locations come from the Host
      // (with its port) that nginx passes on, which this cluster's tests check.
      DFS_TRUST_PROXY: 'true',
      DFS_LOG_LEVEL: process.env.DFS_LOG_LEVEL ?? 'warn',
      ...options.env,
    };
    const count = options.apps ?? 2;
    log(`starting ${count} app instance${count === 1 ? '' : 's'}`);
    const apps: ServerProcess[] = [];
    for (let i = 0; i < count; i++) {
      const dataDir = path.join(dir, `app${i + 1}`);
      await mkdir(dataDir, { recursive: true });
      const app = new ServerProcess(
        { ...shared, DFS_PORT: String(await freePort()), DFS_DATA_DIR: dataDir },
        { logFile: path.join(dataDir, 'app.log'), built: options.built ?? false },
      );
      // The first instance runs the migrations; the second waits for it.
      await app.start();
      stops.push(() => app.stop());
      apps.push(app);
    }

    log('starting nginx');
    const nginx: RunningNginx = await startNginx({
      dir: path.join(dir, 'nginx'),
      port: nginxPort,
      apps: apps.map((app) => new URL(app.baseUrl).host),
      accel: accel.map(({ location, dir: nodeDir }) => ({ location, dir: nodeDir })),
    });
    stops.push(() => nginx.stop());

    const info: ClusterInfo = {
      url,
      dir,
      apps: apps.map((app, i) => ({
        url: app.baseUrl,
        pid: app.pid,
        log: path.join(dir, `app${i + 1}`, 'app.log'),
      })),
      nginx: { pid: nginx.pid, accessLog: nginx.accessLog },
      db: { primary: dbUrl, replica: readUrl, pids: [primary.pid, replica.pid] },
      nodes,
      pids: [primary.pid, replica.pid, ...sshds.map((sshd) => sshd.pid), ...(ceph?.pids ?? [])],
    };
    await writeFile(path.join(dir, 'cluster.json'), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
    return {
      info,
      apps,
      async stop() {
        await stopAll();
        if (!options.keep) await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stopAll();
    if (!options.keep && !options.dir) await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function withDatabase(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function createDatabase(server: RunningMariaDb, name: string): Promise<string> {
  const conn = await mysql.createConnection(connectionOptions(server.url));
  try {
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${name}\` CHARACTER SET utf8mb4`);
  } finally {
    await conn.end();
  }
  return withDatabase(server.url, name);
}
