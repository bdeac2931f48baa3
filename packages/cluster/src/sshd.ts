import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.ts';

/**
 * A real OpenSSH sshd on 127.0.0.1 for the SFTP driver tests. It needs root: sshd only switches to
 * the login user (privilege separation) when started as root, and the test user is created with
 * useradd on first use.
 */
export interface SshdHandle {
  host: string;
  port: number;
  username: string;
  password: string;
  privateKeyPath: string;
  /** A fresh directory the test user owns. */
  root: string;
  /** The listening sshd's pid (0 while it is down). */
  readonly pid: number;
  url(auth: 'password' | 'key', root?: string): string;
  /** SIGTERM the server and its sessions, then remove every file it made. */
  stop(): Promise<void>;
  /** SIGKILL the listener and every session process: what a crashed or rebooted host looks like. */
  kill(): Promise<void>;
  /** Start again on the same port with the same keys (kills first if still running). */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT everything: a host that hangs without closing its sockets. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
}

const USER = 'dfs-sftp-test';
// A fixed throwaway secret: the account only exists on test machines and only this harness's sshd
// (on loopback, with AllowUsers) accepts it.
const PASSWORD = 'Vb7-qT2x_LmE9rKz';

function findSshd(): string {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    // sshd refuses to re-exec itself unless started by absolute path.
    const p = path.resolve(d || '.', 'sshd');
    if (existsSync(p)) return p;
  }
  throw new Error('sshd not found: install openssh-server to run the SFTP tests');
}

function ensureUser(): { uid: number; gid: number } {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'the SFTP tests start a real sshd and must run as root (they create the user dfs-sftp-test)',
    );
  }
  // useradd and chpasswd live in sbin, which a non-login root shell may not have on its PATH.
  const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };
  const exists = () => {
    try {
      execFileSync('id', ['-u', USER], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (!exists()) {
    try {
      execFileSync('useradd', ['--no-create-home', '--shell', '/bin/sh', USER], { stdio: 'pipe', env });
    } catch (err) {
      // Another test process may have created it at the same moment.
      if (!exists()) throw err;
    }
  }
  // Setting it every time keeps the account usable even if someone changed it by hand.
  execFileSync('chpasswd', [], { input: `${USER}:${PASSWORD}\n`, stdio: ['pipe', 'ignore', 'pipe'], env });
  const uid = Number(execFileSync('id', ['-u', USER]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', USER]).toString().trim());
  return { uid, gid };
}

/** Resolves once sshd answers with its banner, which only happens after it has loaded its keys. */
async function waitForBanner(port: number, proc: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`sshd exited (${proc.exitCode ?? proc.signalCode}) during start:\n${log()}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.setTimeout(1000);
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith('SSH-'));
      });
      s.once('error', () => resolve(false));
      s.once('timeout', () => {
        s.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd did not accept connections on port ${port}:\n${log()}`);
}

/** `pid` and everything below it. Each SSH connection is a forked sshd that calls setsid, so a
 * process group would miss them; the parent links survive until the listener dies. */
async function processTree(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      // Field 4 (ppid) follows the command name, which is in parentheses and may hold spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = parents.get(ppid) ?? [];
      list.push(Number(name));
      parents.set(ppid, list);
    } catch {
      // The process exited while we were looking.
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(parents.get(p) ?? []));
  }
  return out;
}

function signalAll(pids: number[], sig: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, sig);
    } catch {
      // Already gone.
    }
  }
}

export interface SshdOptions {
  /** Where the server's throwaway directory goes; default the system temp dir. */
  parentDir?: string;
  /** The SFTP subsystem's command line instead of `internal-sftp` (a server with other extensions). */
  sftpSubsystem?: string;
}

export async function startSshd(options: SshdOptions = {}): Promise<SshdHandle> {
  const sshd = findSshd();
  const { uid, gid } = ensureUser();
  // sshd's privilege separation directory; a fresh container may not have it.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });

  const dir = await mkdtemp(path.join(options.parentDir ?? os.tmpdir(), 'sshd-'));
  // The test user must traverse into its data root and read authorized_keys.
  await chmod(dir, 0o755);
  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  const clientKey = path.join(dir, 'client_ed25519');
  const authorizedKeys = path.join(dir, 'authorized_keys');
  const configPath = path.join(dir, 'sshd_config');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dfs-test-host', '-f', hostKey]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dfs-test-client', '-f', clientKey]);
  await writeFile(authorizedKeys, await readFile(`${clientKey}.pub`), { mode: 0o644 });
  const root = path.join(dir, 'data');
  await mkdir(root, { mode: 0o755 });
  await chown(root, uid, gid);

  const port = await freePort();
  await writeFile(
    configPath,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication yes',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin no',
      `AllowUsers ${USER}`,
      'UseDNS no',
      // The tests open several connections at once and reconnect after kills.
      'MaxStartups 100',
      'MaxSessions 100',
      'LogLevel ERROR',
      `Subsystem sftp ${options.sftpSubsystem ?? 'internal-sftp'}`,
      '',
    ].join('\n'),
  );

  let proc: ChildProcess | null = null;
  let logTail = '';
  const start = async () => {
    logTail = '';
    const p = spawn(sshd, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr?.on('data', (d: Buffer) => {
      logTail = (logTail + d.toString()).slice(-4000);
    });
    proc = p;
    await waitForBanner(port, p, () => logTail);
  };
  const killTree = async (sig: NodeJS.Signals) => {
    const p = proc;
    if (!p?.pid || p.exitCode !== null || p.signalCode !== null) return;
    const pids = await processTree(p.pid);
    signalAll(pids, sig);
    if (sig === 'SIGSTOP' || sig === 'SIGCONT') return;
    await new Promise<void>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) resolve();
      else p.once('exit', () => resolve());
    });
    // Sessions were reparented when the listener died; the pids collected above still name them.
    if (sig !== 'SIGKILL') signalAll(pids.slice(1), 'SIGKILL');
    proc = null;
  };

  await start();

  const handle: SshdHandle = {
    host: '127.0.0.1',
    port,
    username: USER,
    password: PASSWORD,
    privateKeyPath: clientKey,
    root,
    get pid() {
      const p = proc as ChildProcess | null;
      return p && p.exitCode === null && p.signalCode === null ? (p.pid ?? 0) : 0;
    },
    url(auth, r = root) {
      const base = `sftp://${USER}`;
      return auth === 'password'
        ? `${base}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}${r}`
        : `${base}@127.0.0.1:${port}${r}?key=${encodeURIComponent(clientKey)}`;
    },
    async stop() {
      await killTree('SIGCONT');
      await killTree('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
    async kill() {
      await killTree('SIGKILL');
    },
    async restart() {
      await killTree('SIGKILL');
      await start();
    },
    async freeze() {
      await killTree('SIGSTOP');
    },
    async thaw() {
      await killTree('SIGCONT');
    },
  };
  return handle;
}
