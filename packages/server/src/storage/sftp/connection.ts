import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { Client, type ConnectConfig, type SFTPWrapper, type Stats } from 'ssh2';
import { withTimeout } from '../../util/timeout.ts';
import { type NodeCapabilities, NodeUnavailableError } from '../types.ts';
import type { SftpReader } from './reader.ts';

export type { FileEntryWithStats, Stats } from 'ssh2';

/** SFTP status codes (draft-ietf-secsh-filexfer-02 §7). */
export const SFTP_NO_SUCH_FILE = 2;
export const SFTP_FAILURE = 4;
const SFTP_NO_CONNECTION = 6;
const SFTP_CONNECTION_LOST = 7;

/**
 * Bytes per read or write request: what OpenSSH's sftp-server takes (255 KiB). ssh2 splits a
 * request larger than the server announced (`limits@openssh.com`, or 32 KiB when a server
 * announces none) into several, so this is the most sent at once, never more than a server takes.
 */
const MAX_IO_LEN = 255 * 1024;

/** How ssh2's SFTP client refuses, before sending anything, a request the server did not announce. */
export const NOT_OFFERED = /does not support/;

export interface Conn {
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
        await withTimeout(endPolitely(conn.ssh), 2_000, () => new Error('end timed out')).catch(() => {});
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
    const onGone = () => {
      if (conn) this.drop(conn, new NodeUnavailableError(`${this.name}: connection lost`));
    };
    const ssh = new Client();
    // From the start: an 'error' event without a listener would crash the process.
    ssh.on('error', onGone);
    ssh.on('end', onGone);
    ssh.on('close', onGone);
    let sftp: SFTPWrapper;
    try {
      sftp = await withTimeout(
        openSftp(ssh, {
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
    conn = {
      ssh,
      sftp,
      alive: true,
      writeLen: MAX_IO_LEN,
      readLen: MAX_IO_LEN,
      caps: { atomicRename: false, fsync: false, statvfs: false, checksMd5: false },
      readers: new Set(),
    };
    const c = conn;
    // An SFTP protocol error is emitted on the channel; unhandled, it would crash the process.
    sftp.on('error', onGone);
    sftp.on('close', onGone);
    try {
      c.caps = await this.probe(c);
    } catch (err) {
      this.drop(c, err as Error);
      throw this.unavailable('connect', err);
    }
    this.lastCaps = c.caps;
    if (!c.caps.fsync && this.opts.requireFsync !== false) {
      const err = new NodeUnavailableError(
        `${this.name}: the SFTP server does not offer fsync@openssh.com, so bytes it acknowledges may not be on its disk yet; the node is refused (add fsync=0 to its URL to use it without fsync)`,
      );
      this.drop(c, err);
      throw err;
    }
    try {
      for (const dir of this.opts.dirs) await this.mkdirp(c, dir);
    } catch (err) {
      this.drop(c, err as Error);
      throw err;
    }
    if (this.closed) {
      this.drop(c, new NodeUnavailableError(`${this.name}: node closed`));
      throw new NodeUnavailableError(`${this.name}: node closed`);
    }
    this.conn = c;
    return c;
  }

  /**
   * The OpenSSH extensions the server announced, learnt by asking for each: ssh2 throws before
   * sending one the server did not announce, and any answer from the server (these requests name
   * nothing that exists) means it knows the request. The three go out together: one round trip.
   */
  private async probe(conn: Conn): Promise<NodeCapabilities> {
    const nowhere = `${this.opts.dirs[0] ?? ''}/.dfs-probe-${randomUUID()}`;
    const [atomicRename, fsync, statvfs] = await Promise.all([
      this.offers(conn, 'posix-rename@openssh.com', (cb) =>
        conn.sftp.ext_openssh_rename(nowhere, nowhere, cb),
      ),
      // An empty handle names no open file: the server answers with an error status.
      this.offers(conn, 'fsync@openssh.com', (cb) => conn.sftp.ext_openssh_fsync(Buffer.alloc(0), cb)),
      this.offers(conn, 'statvfs@openssh.com', (cb) => conn.sftp.ext_openssh_statvfs(nowhere, cb)),
    ]);
    return { atomicRename, fsync, statvfs, checksMd5: false };
  }

  private async offers(
    conn: Conn,
    extension: string,
    send: (cb: (err: Error | undefined | null) => void) => void,
  ): Promise<boolean> {
    let offered = true;
    try {
      await this.req<void>(conn, `probe ${extension}`, (cb) => {
        try {
          send(cb);
        } catch (err) {
          if (!(err instanceof Error && NOT_OFFERED.test(err.message))) throw err;
          offered = false;
          cb(null);
        }
      });
    } catch (err) {
      if (err instanceof NodeUnavailableError) throw err;
    }
    return offered;
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

/** An SSH connection with its SFTP session, or the error that kept it from opening. */
function openSftp(ssh: Client, config: ConnectConfig): Promise<SFTPWrapper> {
  return new Promise<SFTPWrapper>((resolve, reject) => {
    const settle = (err: Error | undefined, sftp?: SFTPWrapper) => {
      ssh.off('error', onError);
      ssh.off('close', onClose);
      if (sftp) resolve(sftp);
      else reject(err);
    };
    const onError = (err: Error) => settle(err);
    const onClose = () => settle(new Error('connection closed before the SFTP session opened'));
    ssh.on('error', onError);
    ssh.on('close', onClose);
    ssh.once('ready', () => ssh.sftp((err, sftp) => settle(err, sftp)));
    ssh.connect(config);
  });
}

/** Ends the connection with the SSH goodbye and waits for the socket to close. */
function endPolitely(ssh: Client): Promise<void> {
  return new Promise<void>((resolve) => {
    ssh.once('close', () => resolve());
    ssh.end();
  });
}
