import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import SftpClient from 'ssh2-sftp-client';
import { withTimeout } from '../../util/timeout.ts';
import { type NodeCapabilities, NodeUnavailableError } from '../types.ts';
import type { SftpReader } from './reader.ts';

/** SFTP status codes (draft-ietf-secsh-filexfer-02 §7). */
export const SFTP_NO_SUCH_FILE = 2;
const SFTP_NO_CONNECTION = 6;
const SFTP_CONNECTION_LOST = 7;

/** OpenSSH's sftp-server caps reads and writes at 255 KiB; larger requests are split or refused. */
const MAX_IO_LEN = 255 * 1024;

// ssh2 is not a direct dependency, so its types are reached through ssh2-sftp-client's.
type SFTPWrapper = Awaited<ReturnType<SftpClient['connect']>>;
export type Stats = Parameters<Parameters<SFTPWrapper['stat']>[1]>[1];
export type FileEntryWithStats = Parameters<Parameters<SFTPWrapper['readdir']>[1]>[1][number];

/** The parts of ssh2's Client the node uses (ssh2-sftp-client keeps it as `client`). */
interface Client {
  setNoDelay(noDelay: boolean): unknown;
  destroy(): unknown;
  on(event: 'close' | 'end' | 'error', listener: () => void): unknown;
}

/** The parts of ssh2's SFTP object that its typings leave out. */
interface SftpInternals {
  _extensions?: Record<string, string>;
  _maxWriteLen?: number;
  _maxReadLen?: number;
}

export interface Conn {
  client: SftpClient;
  ssh: Client;
  sftp: SFTPWrapper;
  alive: boolean;
  writeLen: number;
  readLen: number;
  caps: NodeCapabilities;
  /** Readers to fail when the connection drops: a paused stream has no request that would. */
  readers: Set<SftpReader>;
}

export type SftpError = Error & { code?: number | string };

export interface SftpConnectionOptions {
  /** The node's name, which prefixes every error message. */
  name: string;
  host: string;
  port: number;
  username: string;
  password?: string | undefined;
  privateKeyPath?: string | undefined;
  connectMs: number;
  opMs: number;
  /** Directories made sure of on every (re)connect, in order. */
  dirs: string[];
  /** Refuse a server that does not offer `fsync@openssh.com` (see SftpNodeOptions). */
  requireFsync?: boolean;
}

/**
 * The node's one SSH connection: opened lazily, reopened on the next call after it drops, and the
 * place where a failed or stuck request is turned into the error callers act on.
 */
export class SftpConnection {
  readonly name: string;
  private readonly opts: SftpConnectionOptions;
  private readonly connectMs: number;
  private readonly opMs: number;
  private conn: Conn | null = null;
  private connecting: Promise<Conn> | null = null;
  private lastCaps: NodeCapabilities = {
    atomicRename: false,
    fsync: false,
    statvfs: false,
    checksMd5: false,
  };
  private closed = false;

  constructor(opts: SftpConnectionOptions) {
    this.opts = opts;
    this.name = opts.name;
    this.connectMs = opts.connectMs;
    this.opMs = opts.opMs;
  }

  async connect(): Promise<void> {
    this.closed = false;
    await this.ensure();
  }

  async close(): Promise<void> {
    this.closed = true;
    const conn = this.conn ?? (await this.connecting?.catch(() => null));
    this.conn = null;
    if (conn) {
      const wasAlive = conn.alive;
      this.drop(conn, new NodeUnavailableError(`${this.name}: node closed`), false);
      // A polite goodbye when the link still works; the bound keeps close() from hanging on one that doesn't.
      if (wasAlive)
        await withTimeout(conn.client.end(), 2_000, () => new Error('end timed out')).catch(() => {});
      conn.ssh.destroy();
    }
  }

  capabilities(): NodeCapabilities {
    return { ...(this.conn?.caps ?? this.lastCaps) };
  }

  ensure(): Promise<Conn> {
    if (this.closed) return Promise.reject(new NodeUnavailableError(`${this.name}: node closed`));
    if (this.conn?.alive) return Promise.resolve(this.conn);
    this.connecting ??= this.open().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async open(): Promise<Conn> {
    const privateKey = this.opts.privateKeyPath ? await readFile(this.opts.privateKeyPath) : undefined;
    let conn: Conn | null = null;
    // ssh2-sftp-client prints to the console on unexpected end/close by default; the node handles them.
    const onGone = () => {
      if (conn) this.drop(conn, new NodeUnavailableError(`${this.name}: connection lost`));
    };
    const client = new SftpClient(this.name, { error: onGone, end: onGone, close: onGone });
    const ssh = (client as unknown as { client: Client }).client;
    let sftp: SFTPWrapper;
    try {
      sftp = await withTimeout(
        client.connect({
          host: this.opts.host,
          port: this.opts.port,
          username: this.opts.username,
          ...(this.opts.password ? { password: this.opts.password } : {}),
          ...(privateKey ? { privateKey } : {}),
          readyTimeout: this.connectMs,
          // Catches a peer that vanished without a FIN (power loss, cable) between calls.
          keepaliveInterval: 10_000,
          keepaliveCountMax: 3,
        }),
        this.connectMs + 1_000,
        () => new Error(`connect timed out after ${this.connectMs} ms`),
      );
    } catch (err) {
      ssh.destroy();
      throw this.unavailable('connect', err);
    }
    ssh.setNoDelay(true);
    const internals = sftp as unknown as SftpInternals;
    const ext = internals._extensions ?? {};
    const caps: NodeCapabilities = {
      atomicRename: 'posix-rename@openssh.com' in ext,
      fsync: 'fsync@openssh.com' in ext,
      statvfs: 'statvfs@openssh.com' in ext,
      checksMd5: false,
    };
    conn = {
      client,
      ssh,
      sftp,
      alive: true,
      // ssh2 reads `limits@openssh.com` when offered; 32 KiB is the size every server must accept.
      writeLen: Math.min(internals._maxWriteLen ?? 32 * 1024, MAX_IO_LEN),
      readLen: Math.min(internals._maxReadLen ?? 32 * 1024, MAX_IO_LEN),
      caps,
      readers: new Set(),
    };
    const c = conn;
    this.lastCaps = caps;
    if (!caps.fsync && this.opts.requireFsync !== false) {
      const err = new NodeUnavailableError(
        `${this.name}: the SFTP server does not offer fsync@openssh.com, so bytes it acknowledges may not be on its disk yet; the node is refused (add fsync=0 to its URL to use it without fsync)`,
      );
      this.drop(c, err);
      throw err;
    }
    ssh.on('close', onGone);
    ssh.on('end', onGone);
    ssh.on('error', onGone);
    // An SFTP protocol error is emitted on the channel; unhandled, it would crash the process.
    sftp.on('error', onGone);
    sftp.on('close', onGone);
    try {
      for (const dir of this.opts.dirs) await this.mkdirp(c, dir);
    } catch (err) {
      this.drop(c, err as Error);
      throw err;
    }
    this.lastCaps = caps;
    if (this.closed) {
      this.drop(c, new NodeUnavailableError(`${this.name}: node closed`));
      throw new NodeUnavailableError(`${this.name}: node closed`);
    }
    this.conn = c;
    return c;
  }

  /** Marks a connection dead so the next call reconnects, and fails whatever still depends on it. */
  drop(conn: Conn, reason: Error, destroy = true): void {
    if (!conn.alive) return;
    conn.alive = false;
    if (this.conn === conn) this.conn = null;
    for (const r of conn.readers) r.destroy(reason);
    conn.readers.clear();
    if (destroy) conn.ssh.destroy();
  }

  unavailable(what: string, err: unknown): NodeUnavailableError {
    if (err instanceof NodeUnavailableError) return err;
    const msg = err instanceof Error ? err.message : String(err);
    return new NodeUnavailableError(`${this.name}: ${what}: ${msg}`, { cause: err });
  }

  /**
   * Maps a failed request to the error callers act on. A request that died with its connection is
   * `NodeUnavailableError` so the caller fails over; anything else keeps its SFTP status code.
   */
  fail(conn: Conn, what: string, err: unknown): Error {
    const e = err as SftpError;
    if (
      err instanceof NodeUnavailableError ||
      !conn.alive ||
      e?.code === SFTP_NO_CONNECTION ||
      e?.code === SFTP_CONNECTION_LOST ||
      e?.message === 'No response from server' ||
      (typeof e?.code === 'string' && /^E(CONN|PIPE|TIMEDOUT|HOSTUNREACH|NETUNREACH)/.test(e.code))
    ) {
      return this.unavailable(what, err);
    }
    const out = new Error(`${this.name}: ${what}: ${e?.message ?? String(err)}`, { cause: err }) as SftpError;
    out.code = e?.code;
    return out;
  }

  /**
   * One SFTP request with a deadline. A request that outlives it means the server or the link is
   * stuck, so the connection is dropped: the next call starts over instead of queueing behind it.
   */
  req<T>(
    conn: Conn,
    what: string,
    fn: (cb: (err: Error | undefined | null, value?: T) => void) => void,
    ms = this.opMs,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (!conn.alive) {
        reject(this.unavailable(what, new Error('connection lost')));
        return;
      }
      const timer = setTimeout(() => {
        const err = new NodeUnavailableError(`${this.name}: ${what}: timed out after ${ms} ms`);
        this.drop(conn, err);
        reject(err);
      }, ms);
      try {
        fn((err, value) => {
          clearTimeout(timer);
          if (err) reject(this.fail(conn, what, err));
          else resolve(value as T);
        });
      } catch (err) {
        clearTimeout(timer);
        reject(this.fail(conn, what, err));
      }
    });
  }

  /** Two round trips for a directory that exists (the common case), more only for missing parents. */
  async mkdirp(conn: Conn, dir: string): Promise<void> {
    try {
      await this.req<void>(conn, `mkdir ${dir}`, (cb) => conn.sftp.mkdir(dir, cb));
      return;
    } catch (err) {
      if (err instanceof NodeUnavailableError) throw err;
      if ((err as SftpError).code === SFTP_NO_SUCH_FILE && dir !== '/') {
        await this.mkdirp(conn, posix.dirname(dir));
        return this.mkdirp(conn, dir);
      }
      // SFTPv3 has no "already exists" status: mkdir of an existing path is a plain FAILURE.
      const st = await this.req<Stats>(conn, `stat ${dir}`, (cb) => conn.sftp.stat(dir, cb)).catch(
        () => null,
      );
      if (!st?.isDirectory()) throw err;
    }
  }
}
