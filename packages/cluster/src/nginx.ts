import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { freePort } from './ports.ts';

const REPO = path.resolve(import.meta.dirname, '../../..');
const SERVER_CONF = path.join(REPO, 'deploy/nginx.conf');
const ACCEL_TEMPLATE = path.join(REPO, 'deploy/nginx-accel.conf.template');

export interface NginxOptions {
  /** Config, logs, pid and temp files go here. */
  dir: string;
  /** `host:port` of each app instance. */
  apps: string[];
  /** Node directories nginx serves itself (X-Accel-Redirect): location → directory. */
  accel?: { location: string; dir: string }[];
}

export interface RunningNginx {
  url: string;
  port: number;
  pid: number;
  /**
   * One line per request: `<status> <method> <request uri> <final uri> <upstream addrs>`; the
   * upstreams tried come last, comma-separated when nginx moved on from a failed one.
   */
  accessLog: string;
  stop(): Promise<void>;
}

function findNginx(): string {
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin']) {
    const candidate = path.join(dir || '.', 'nginx');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('nginx not found: install the nginx package (scripts/lib/ensure-system-deps.sh does)');
}

/** Replaces `from` in `text`, and fails loudly when deploy/nginx.conf no longer has it. */
function substitute(text: string, from: RegExp, to: string, what: string): string {
  if (!from.test(text))
    throw new Error(`deploy/nginx.conf: expected ${what} (${from}) to render for loopback`);
  return text.replace(from, to);
}

/**
 * The project's own deploy/nginx.conf (the compose file's), rendered for loopback: the upstreams
 * name the app instances, nginx listens on `port` and includes
 * the accel locations written from deploy/nginx-accel.conf.template. Wrapped in the main context
 * a distribution's nginx.conf would give it, with every path inside `dir`.
 */
export async function renderNginxConfig(options: NginxOptions & { port: number }): Promise<string> {
  const { dir } = options;
  let server = await readFile(SERVER_CONF, 'utf8');
  const upstreamServers = options.apps
    .map((app) => `server ${app} max_fails=1 fail_timeout=5s;`)
    .join('\n  ');
  server = substitute(server, /server app:8080;/g, upstreamServers, 'the app upstream');
  server = substitute(server, /listen 80;/, `listen 127.0.0.1:${options.port};`, 'the listen port');
  const accelDir = path.join(dir, 'accel.d');
  server = substitute(
    server,
    /include \/etc\/nginx\/dfs-accel\.d\/\*\.conf;/,
    `include ${accelDir}/*.conf;`,
    'the accel include',
  );
  await mkdir(accelDir, { recursive: true });
  const template = await readFile(ACCEL_TEMPLATE, 'utf8');
  for (const [i, { location, dir: nodeDir }] of (options.accel ?? []).entries()) {
    const conf = template
      .replaceAll('@LOCATION@', location)
      .replaceAll('@DIR@', `${nodeDir.replace(/\/+$/, '')}/`);
    await writeFile(path.join(accelDir, `node${i + 1}.conf`), conf);
  }
  const temp = path.join(dir, 'temp');
  await mkdir(temp, { recursive: true });
  const root = process.getuid?.() === 0;
  return [
    // Workers must read node directories owned by other users (X-Accel-Redirect downloads).
    root ? 'user root;' : '',
    'daemon off;',
    'worker_processes 2;',
    `pid ${path.join(dir, 'nginx.pid')};`,
    `error_log ${path.join(dir, 'error.log')} warn;`,
    'events { worker_connections 1024; }',
    'http {',
    '  include /etc/nginx/mime.types;',
    '  default_type application/octet-stream;',
    '  sendfile on;',
    '  tcp_nopush on;',
    // $uri is the internal location after an X-Accel-Redirect: the line shows who sent the bytes.
    `  log_format dfs '$status $request_method $request_uri $uri $upstream_addr';`,
    `  access_log ${path.join(dir, 'access.log')} dfs;`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
      (kind) => `  ${kind}_temp_path ${path.join(temp, kind)};`,
    ),
    server
      .split('\n')
      .map((line) => (line ? `  ${line}` : line))
      .join('\n'),
    '}',
    '',
  ].join('\n');
}

async function waitForPort(port: number, child: ChildProcess, log: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`nginx exited (${child.exitCode ?? child.signalCode}):\n${await log()}`);
    }
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx did not listen on ${port}:\n${await log()}`);
}

/** Debian's nginx in the foreground with the rendered config; stop() ends it. */
export async function startNginx(options: NginxOptions & { port?: number }): Promise<RunningNginx> {
  const nginx = findNginx();
  await mkdir(options.dir, { recursive: true });
  const port = options.port ?? (await freePort());
  const confPath = path.join(options.dir, 'nginx.conf');
  await writeFile(confPath, await renderNginxConfig({ ...options, port }));
  const errorLog = path.join(options.dir, 'error.log');
  const log = () => readFile(errorLog, 'utf8').catch(() => '(no error log)');
  // -e: the error log before the config is read, which would otherwise be /var/log/nginx's.
  const child = spawn(nginx, ['-c', confPath, '-p', `${options.dir}/`, '-e', errorLog], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  try {
    await waitForPort(port, child, async () => `${stderr}${await log()}`);
  } catch (error) {
    child.kill('SIGKILL');
    process.removeListener('exit', killOnExit);
    throw error;
  }
  let stopped: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? 0,
    accessLog: path.join(options.dir, 'access.log'),
    stop() {
      stopped ??= (async () => {
        process.removeListener('exit', killOnExit);
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        // SIGQUIT: a graceful shutdown that lets transfers in flight finish; SIGTERM after 5 s.
        child.kill('SIGQUIT');
        const timer = setTimeout(() => child.kill('SIGTERM'), 5000);
        await exited;
        clearTimeout(timer);
      })();
      return stopped;
    },
  };
}
