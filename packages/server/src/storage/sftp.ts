import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import SftpClient from 'ssh2-sftp-client';
import { withTimeout } from '../util/timeout.ts';
import {
  assertObjectKey,
  assertPartId,
  type ByteRange,
  isObjectKey,
  isPartId,
  type NodeCapabilities,
  NodeUnavailableError,
  type ObjectEntry,
  ObjectNotFoundError,
  type PutOptions,
  type StorageNode,
} from './types.ts';

export interface SftpNodeOptions {
  host: string;
  port?: number;
  username: string;
  password?: string;
  privateKeyPath?: string;
  /** Absolute directory on the server that holds the node's objects and `.tmp/`. */
  root: string;
  timeouts?: {
    /** TCP connect + SSH handshake + auth. */
    connectMs?: number;
    /** Any single metadata request (stat, rename, fsync, ...). */
    opMs?: number;
    /** A transfer fails when no byte moves for this long; transfers have no total limit. */
    idleMs?: number;
    /** `ping` is a health check, so it gives up sooner than regular calls. */
    pingMs?: number;
  };
  /** Positioned writes / reads kept in flight per transfer. */
  concurrency?: number;
}

/** SFTP status codes (draft-ietf-secsh-filexfer-02 §7). */
const SFTP_NO_SUCH_FILE = 2;
const SFTP_NO_CONNECTION = 6;
const SFTP_CONNECTION_LOST = 7;

/** OpenSSH's sftp-server caps reads and writes at 255 KiB; larger requests are split or refused. */
const MAX_IO_LEN = 255 * 1024;

const TMP_DIR = '.tmp';
const PARTS_DIR = '.parts';

// ssh2 is not a direct dependency, so its types are reached through ssh2-sftp-client's.
type SFTPWrapper = Awaited<ReturnType<SftpClient['connect']>>;
type Stats = Parameters<Parameters<SFTPWrapper['stat']>[1]>[1];
type FileEntryWithStats = Parameters<Parameters<SFTPWrapper['readdir']>[1]>[1][number];

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

interface Conn {
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

type SftpError = Error & { code?: number | string };

/**
 * A node reached over SFTP. One SSH connection per node, opened lazily and reopened on the next call
 * after it drops; the node object itself lives for the whole process.
 *
 * ssh2's own streams keep one request in flight (≈ 1.8 MB/s without `setNoDelay`, see DESIGN.md), so
 * `put` and `get` drive the SFTP handle directly with several positioned requests in flight.
 */
export class SftpNode implements StorageNode {
  readonly kind = 'sftp' as const;
  readonly name: string;
  private readonly opts: SftpNodeOptions;
  private readonly root: string;
  private readonly connectMs: number;
  private readonly opMs: number;
  private readonly idleMs: number;
  private readonly pingMs: number;
  private readonly concurrency: number;
  private conn: Conn | null = null;
  private connecting: Promise<Conn> | null = null;
  private lastCaps: NodeCapabilities = { atomicRename: false, fsync: false, statvfs: false };
  private closed = false;

  constructor(opts: SftpNodeOptions) {
    if (!posix.isAbsolute(opts.root)) throw new Error(`sftp node root must be absolute, got "${opts.root}"`);
    if (!opts.password && !opts.privateKeyPath)
      throw new Error('sftp node needs a password or a private key');
    this.opts = opts;
    this.root = posix.normalize(opts.root).replace(/(.)\/$/, '$1');
    const port = opts.port ?? 22;
    const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    this.name = `sftp://${encodeURIComponent(opts.username)}@${host}:${port}${this.root}`;
    this.connectMs = opts.timeouts?.connectMs ?? 10_000;
    this.opMs = opts.timeouts?.opMs ?? 15_000;
    this.idleMs = opts.timeouts?.idleMs ?? 30_000;
    this.pingMs = opts.timeouts?.pingMs ?? Math.min(5_000, this.opMs);
    this.concurrency = Math.max(1, opts.concurrency ?? 16);
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

  // ---- connection ------------------------------------------------------------------------------

  private ensure(): Promise<Conn> {
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
          port: this.opts.port ?? 22,
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
    ssh.on('close', onGone);
    ssh.on('end', onGone);
    ssh.on('error', onGone);
    // An SFTP protocol error is emitted on the channel; unhandled, it would crash the process.
    sftp.on('error', onGone);
    sftp.on('close', onGone);
    try {
      await this.mkdirp(c, `${this.root}/${TMP_DIR}`);
      await this.mkdirp(c, `${this.root}/${PARTS_DIR}`);
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
  private drop(conn: Conn, reason: Error, destroy = true): void {
    if (!conn.alive) return;
    conn.alive = false;
    if (this.conn === conn) this.conn = null;
    for (const r of conn.readers) r.destroy(reason);
    conn.readers.clear();
    if (destroy) conn.ssh.destroy();
  }

  private unavailable(what: string, err: unknown): NodeUnavailableError {
    if (err instanceof NodeUnavailableError) return err;
    const msg = err instanceof Error ? err.message : String(err);
    return new NodeUnavailableError(`${this.name}: ${what}: ${msg}`, { cause: err });
  }

  /**
   * Maps a failed request to the error callers act on. A request that died with its connection is
   * `NodeUnavailableError` so the caller fails over; anything else keeps its SFTP status code.
   */
  private fail(conn: Conn, what: string, err: unknown): Error {
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
  private req<T>(
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
  private async mkdirp(conn: Conn, dir: string): Promise<void> {
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

  private pathOf(key: string): string {
    assertObjectKey(key);
    return `${this.root}/${key}`;
  }

  // ---- objects ---------------------------------------------------------------------------------

  async put(key: string, source: Readable, expectedSize: number, options: PutOptions = {}): Promise<void> {
    let finalPath: string;
    try {
      finalPath = this.pathOf(key);
      if (!Number.isSafeInteger(expectedSize) || expectedSize < 0) {
        throw new Error(`invalid expected size ${expectedSize}`);
      }
    } catch (err) {
      source.destroy();
      throw err;
    }
    let conn: Conn;
    try {
      conn = await this.ensure();
    } catch (err) {
      source.destroy();
      throw err;
    }
    const tmpPath = `${this.root}/${TMP_DIR}/${randomUUID()}`;
    let handle: Buffer | undefined;
    let created = false;
    try {
      handle = await this.req<Buffer>(conn, 'open tmp', (cb) => conn.sftp.open(tmpPath, 'wx', cb));
      created = true;
      await this.writeAll(conn, handle, source, expectedSize);
      if (conn.caps.fsync) {
        const h = handle;
        await this.req(conn, 'fsync', (cb) => conn.sftp.ext_openssh_fsync(h, cb));
      }
      const h = handle;
      const st = await this.req<Stats>(conn, 'fstat', (cb) => conn.sftp.fstat(h, cb));
      if (st.size !== expectedSize) {
        throw new Error(`size mismatch: wrote ${st.size} bytes, expected ${expectedSize}`);
      }
      await options.beforeCommit?.();
      handle = undefined;
      await this.req(conn, 'close', (cb) => conn.sftp.close(h, cb));
      await this.publish(conn, tmpPath, finalPath);
      created = false;
    } catch (err) {
      source.destroy();
      if (conn.alive && handle) {
        const h = handle;
        await this.req(conn, 'close', (cb) => conn.sftp.close(h, cb)).catch(() => {});
      }
      // On a dead connection the tmp file stays behind for `sweepTmp`; reconnecting here would only
      // delay the caller's fail-over.
      if (conn.alive && created) {
        await this.req(conn, 'unlink tmp', (cb) => conn.sftp.unlink(tmpPath, cb)).catch(() => {});
      }
      throw err instanceof Error && !(err instanceof NodeUnavailableError) && !conn.alive
        ? this.unavailable('put', err)
        : err;
    }
  }

  /**
   * Streams `source` into `handle` as up to `concurrency` positioned writes of `writeLen` bytes.
   * Reading from the source waits while all slots are busy, so memory stays near
   * concurrency × writeLen (4 MiB with the defaults) whatever the source's speed.
   */
  private writeAll(conn: Conn, handle: Buffer, source: Readable, expectedSize: number): Promise<void> {
    const { sftp, writeLen } = conn;
    return new Promise<void>((resolve, reject) => {
      let offset = 0; // bytes handed to sftp.write
      let block = Buffer.allocUnsafe(Math.min(writeLen, Math.max(expectedSize, 1)));
      let fill = 0;
      let inflight = 0;
      let sourceDone = false;
      let settled = false;
      let idleTimer: NodeJS.Timeout | undefined;

      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(idleTimer);
        source.off('data', onData);
        source.off('end', onEnd);
        source.off('error', onError);
        conn.sftp.off('close', onClose);
        if (err) {
          source.destroy();
          reject(err);
        } else {
          resolve();
        }
      };
      const touch = () => {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => {
          const err = new NodeUnavailableError(
            inflight > 0
              ? `${this.name}: put: no write acknowledged for ${this.idleMs} ms`
              : `${this.name}: put: source sent nothing for ${this.idleMs} ms`,
          );
          if (inflight > 0) this.drop(conn, err);
          finish(inflight > 0 ? err : new Error(err.message));
        }, this.idleMs);
      };
      const send = (buf: Buffer, len: number) => {
        const pos = offset;
        offset += len;
        inflight++;
        try {
          sftp.write(handle, buf, 0, len, pos, (err) => {
            inflight--;
            if (settled) return;
            if (err) {
              finish(this.fail(conn, 'write', err));
              return;
            }
            touch();
            if (inflight < this.concurrency && source.isPaused()) source.resume();
            if (sourceDone && inflight === 0) finish();
          });
        } catch (err) {
          inflight--;
          finish(this.fail(conn, 'write', err));
        }
      };
      const flush = () => {
        if (fill === 0) return;
        const buf = block;
        block = Buffer.allocUnsafe(writeLen);
        const len = fill;
        fill = 0;
        send(buf, len);
      };
      const onData = (chunk: Buffer | string) => {
        const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        touch();
        if (offset + fill + data.length > expectedSize) {
          finish(new Error(`size mismatch: source has more than ${expectedSize} bytes`));
          return;
        }
        let at = 0;
        while (at < data.length) {
          if (fill === 0 && data.length - at >= writeLen) {
            // Whole blocks of a large chunk go out as views: ssh2 copies them into its packet anyway.
            send(data.subarray(at, at + writeLen), writeLen);
            at += writeLen;
            continue;
          }
          const n = Math.min(writeLen - fill, data.length - at);
          data.copy(block, fill, at, at + n);
          fill += n;
          at += n;
          if (fill === writeLen) flush();
        }
        if (inflight >= this.concurrency) source.pause();
      };
      const onEnd = () => {
        sourceDone = true;
        flush();
        if (offset !== expectedSize) {
          finish(new Error(`size mismatch: source ended after ${offset} bytes, expected ${expectedSize}`));
        } else if (inflight === 0) {
          finish();
        }
      };
      const onError = (err: Error) => finish(err);
      // ssh2 fails pending requests on a dropped channel, but a write that was never sent (source
      // slower than the network) has no request to fail.
      const onClose = () => finish(this.unavailable('put', new Error('connection lost')));

      source.on('error', onError);
      source.on('end', onEnd);
      conn.sftp.on('close', onClose);
      if (!conn.alive) {
        onClose();
        return;
      }
      touch();
      source.on('data', onData);
      if (source.readableEnded) onEnd();
    });
  }

  /** Moves a finished tmp file over `finalPath`, creating its directories on first use. */
  private async publish(conn: Conn, tmpPath: string, finalPath: string): Promise<void> {
    const move = async () => {
      if (conn.caps.atomicRename) {
        await this.req(conn, 'rename', (cb) => conn.sftp.ext_openssh_rename(tmpPath, finalPath, cb));
        return;
      }
      // Plain SFTP rename refuses an existing target, so replacing one has a window without it.
      await this.req(conn, 'unlink old', (cb) => conn.sftp.unlink(finalPath, cb)).catch((err: SftpError) => {
        if (err.code !== SFTP_NO_SUCH_FILE) throw err;
      });
      await this.req(conn, 'rename', (cb) => conn.sftp.rename(tmpPath, finalPath, cb));
    };
    try {
      await move();
    } catch (err) {
      if ((err as SftpError).code !== SFTP_NO_SUCH_FILE) throw err;
      // Most keys land in a directory that already exists, so mkdir only costs round trips on a miss.
      await this.mkdirp(conn, posix.dirname(finalPath));
      await move();
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const p = this.pathOf(key);
    if (range && !(Number.isSafeInteger(range.start) && range.start >= 0 && range.end >= range.start)) {
      throw new RangeError(`invalid range ${range.start}-${range.end}`);
    }
    return this.readFile(p, key, range);
  }

  /** A read-ahead stream over `p`; `ObjectNotFoundError` when there is no such file. */
  private async readFile(p: string, label: string, range?: ByteRange): Promise<Readable> {
    const conn = await this.ensure();
    let handle: Buffer;
    try {
      handle = await this.req<Buffer>(conn, `open ${label}`, (cb) => conn.sftp.open(p, 'r', cb));
    } catch (err) {
      if ((err as SftpError).code === SFTP_NO_SUCH_FILE) throw new ObjectNotFoundError(`no object ${label}`);
      throw err;
    }
    let end = range ? range.end + 1 : -1;
    if (end < 0) {
      // Knowing the size up front saves the read-ahead from probing past EOF.
      const h = handle;
      const st = await this.req<Stats>(conn, 'fstat', (cb) => conn.sftp.fstat(h, cb)).catch((err) => {
        this.closeHandle(conn, h);
        throw err;
      });
      end = st.size;
    }
    const reader = new SftpReader(
      {
        readAt: (pos, len) =>
          this.req<Buffer>(
            conn,
            `read ${label}`,
            (cb) =>
              conn.sftp.read(handle, Buffer.allocUnsafe(len), 0, len, pos, (err, n, data) =>
                cb(err, n > 0 ? data.subarray(0, n) : Buffer.alloc(0)),
              ),
            this.idleMs,
          ),
        closeHandle: () => this.closeHandle(conn, handle),
        readLen: conn.readLen,
        concurrency: this.concurrency,
      },
      range?.start ?? 0,
      end,
    );
    conn.readers.add(reader);
    reader.once('close', () => conn.readers.delete(reader));
    return reader;
  }

  private closeHandle(conn: Conn, handle: Buffer): void {
    if (conn.alive) this.req(conn, 'close', (cb) => conn.sftp.close(handle, cb)).catch(() => {});
  }

  async stat(key: string): Promise<{ size: number } | null> {
    const p = this.pathOf(key);
    const conn = await this.ensure();
    try {
      const st = await this.req<Stats>(conn, `stat ${key}`, (cb) => conn.sftp.stat(p, cb));
      return st.isFile() ? { size: st.size } : null;
    } catch (err) {
      if ((err as SftpError).code === SFTP_NO_SUCH_FILE) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    const p = this.pathOf(key);
    const conn = await this.ensure();
    try {
      await this.req(conn, `delete ${key}`, (cb) => conn.sftp.unlink(p, cb));
    } catch (err) {
      if ((err as SftpError).code !== SFTP_NO_SUCH_FILE) throw err;
    }
  }

  async usage(): Promise<{ usedBytes: number; freeBytes: number; totalBytes: number }> {
    const conn = await this.ensure();
    if (!conn.caps.statvfs) return { usedBytes: 0, freeBytes: 0, totalBytes: 0 };
    const v = await this.req<Record<string, number | bigint>>(conn, 'statvfs', (cb) =>
      conn.sftp.ext_openssh_statvfs(this.root, cb),
    );
    const n = (k: string) => Number(v[k] ?? 0);
    const unit = n('f_frsize') || n('f_bsize');
    return {
      totalBytes: n('f_blocks') * unit,
      freeBytes: n('f_bavail') * unit,
      usedBytes: (n('f_blocks') - n('f_bfree')) * unit,
    };
  }

  async ping(): Promise<void> {
    const conn = await this.ensure();
    const st = await this.req<Stats>(conn, 'ping', (cb) => conn.sftp.stat(this.root, cb), this.pingMs);
    if (!st.isDirectory()) throw new NodeUnavailableError(`${this.name}: root is not a directory`);
  }

  async sweepTmp(olderThanMs: number): Promise<number> {
    const conn = await this.ensure();
    const dir = `${this.root}/${TMP_DIR}`;
    const entries = await this.req<FileEntryWithStats[]>(conn, 'readdir tmp', (cb) =>
      conn.sftp.readdir(dir, cb),
    );
    // SFTP mtimes have one-second resolution, so "older than 0 ms" must include the current second.
    const cutoff = Math.floor((Date.now() - olderThanMs) / 1000);
    let removed = 0;
    for (const e of entries) {
      if (e.filename === '.' || e.filename === '..' || e.attrs.mtime > cutoff) continue;
      try {
        await this.req(conn, 'unlink tmp', (cb) => conn.sftp.unlink(`${dir}/${e.filename}`, cb));
        removed++;
      } catch (err) {
        if ((err as SftpError).code !== SFTP_NO_SUCH_FILE) throw err;
      }
    }
    return removed;
  }

  async *list(prefix = ''): AsyncIterable<ObjectEntry> {
    if (prefix !== '') assertObjectKey(prefix);
    yield* this.walk(prefix);
  }

  /** Depth first: one READDIR exchange per directory, sizes and mtimes come with the names. */
  private async *walk(dir: string): AsyncGenerator<ObjectEntry> {
    const conn = await this.ensure();
    const p = dir ? `${this.root}/${dir}` : this.root;
    let entries: FileEntryWithStats[];
    try {
      entries = await this.req<FileEntryWithStats[]>(conn, `readdir ${dir || '/'}`, (cb) =>
        conn.sftp.readdir(p, cb),
      );
    } catch (err) {
      if ((err as SftpError).code === SFTP_NO_SUCH_FILE) return;
      throw err;
    }
    for (const e of entries) {
      const key = dir ? `${dir}/${e.filename}` : e.filename;
      if (!isObjectKey(key)) continue;
      if (e.attrs.isDirectory()) yield* this.walk(key);
      else if (e.attrs.isFile()) yield { key, size: e.attrs.size, mtimeMs: e.attrs.mtime * 1000 };
    }
  }

  // ---- part files ------------------------------------------------------------------------------

  private partPath(partId: string): string {
    assertPartId(partId);
    return `${this.root}/${PARTS_DIR}/${partId}`;
  }

  async writePart(partId: string, offset: number, data: Buffer): Promise<void> {
    const p = this.partPath(partId);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`invalid offset ${offset}`);
    const conn = await this.ensure();
    const handle = await this.openPart(conn, p);
    try {
      await this.writeBuffer(conn, handle, data, offset);
      if (conn.caps.fsync) {
        await this.req(conn, 'fsync part', (cb) => conn.sftp.ext_openssh_fsync(handle, cb));
      }
    } finally {
      this.closeHandle(conn, handle);
    }
  }

  /** Opens a part file for positioned writes, creating it without truncating a concurrent writer's. */
  private async openPart(conn: Conn, p: string): Promise<Buffer> {
    const open = (flags: 'r+' | 'wx') =>
      this.req<Buffer>(conn, `open part (${flags})`, (cb) => conn.sftp.open(p, flags, cb));
    try {
      return await open('r+');
    } catch (err) {
      if (err instanceof NodeUnavailableError || (err as SftpError).code !== SFTP_NO_SUCH_FILE) throw err;
    }
    try {
      return await open('wx');
    } catch (err) {
      if (err instanceof NodeUnavailableError) throw err;
      // Another writer created it in between (SFTPv3 reports that as a plain failure).
      return open('r+');
    }
  }

  /** Sends `data` as positioned writes at `base`, up to `concurrency` of them in flight. */
  private writeBuffer(conn: Conn, handle: Buffer, data: Buffer, base: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let next = 0;
      let inflight = 0;
      let failed = false;
      const pump = () => {
        while (!failed && inflight < this.concurrency && next < data.length) {
          const at = next;
          const len = Math.min(conn.writeLen, data.length - at);
          next += len;
          inflight++;
          this.req<void>(
            conn,
            'write part',
            (cb) => conn.sftp.write(handle, data, at, len, base + at, (err) => cb(err)),
            this.idleMs,
          ).then(
            () => {
              inflight--;
              if (failed) return;
              if (next >= data.length && inflight === 0) resolve();
              else pump();
            },
            (err: Error) => {
              inflight--;
              if (!failed) {
                failed = true;
                reject(err);
              }
            },
          );
        }
      };
      if (data.length === 0) resolve();
      else pump();
    });
  }

  async readPart(partId: string, range: ByteRange): Promise<Readable> {
    if (!(Number.isSafeInteger(range.start) && range.start >= 0 && range.end >= range.start)) {
      throw new RangeError(`invalid range ${range.start}-${range.end}`);
    }
    return this.readFile(this.partPath(partId), `part ${partId}`, range);
  }

  async commitPart(partId: string, key: string, size: number): Promise<void> {
    const partPath = this.partPath(partId);
    const finalPath = this.pathOf(key);
    const conn = await this.ensure();
    const part = await this.req<Stats>(conn, 'stat part', (cb) => conn.sftp.stat(partPath, cb)).catch(
      (err: SftpError) => {
        if (err.code === SFTP_NO_SUCH_FILE) return null;
        throw err;
      },
    );
    const existing = await this.stat(key);
    if (!part) {
      // Already published by an earlier attempt (or the object was there before).
      if (existing?.size === size) return;
      throw new ObjectNotFoundError(`no part ${partId} and no object ${key}`);
    }
    if (part.size !== size) throw new Error(`size mismatch: part has ${part.size} bytes, expected ${size}`);
    if (existing) {
      // The same verified bytes are already stored: keep them, never replace a stored object.
      await this.deletePart(partId);
      return;
    }
    await this.publish(conn, partPath, finalPath);
  }

  async deletePart(partId: string): Promise<void> {
    const p = this.partPath(partId);
    const conn = await this.ensure();
    try {
      await this.req(conn, `delete part ${partId}`, (cb) => conn.sftp.unlink(p, cb));
    } catch (err) {
      if ((err as SftpError).code !== SFTP_NO_SUCH_FILE) throw err;
    }
  }

  async *listParts(): AsyncIterable<{ partId: string; mtimeMs: number }> {
    const conn = await this.ensure();
    const entries = await this.req<FileEntryWithStats[]>(conn, 'readdir parts', (cb) =>
      conn.sftp.readdir(`${this.root}/${PARTS_DIR}`, cb),
    ).catch((err: SftpError) => {
      if (err.code === SFTP_NO_SUCH_FILE) return [] as FileEntryWithStats[];
      throw err;
    });
    for (const e of entries) {
      if (isPartId(e.filename) && e.attrs.isFile())
        yield { partId: e.filename, mtimeMs: e.attrs.mtime * 1000 };
    }
  }
}

interface ReadSlot {
  pos: number;
  len: number;
  data?: Buffer;
}

/**
 * A read-ahead stream over one remote handle: up to `concurrency` reads in flight, emitted in order.
 * It stops asking for more while the consumer is not reading, and fails (instead of hanging) when
 * the connection drops or a read gets no answer within the idle timeout.
 */
class SftpReader extends Readable {
  private next: number;
  private readonly slots: ReadSlot[] = [];
  private wanting = false;
  private finished = false;

  constructor(
    private readonly io: {
      readAt(pos: number, len: number): Promise<Buffer>;
      closeHandle(): void;
      readLen: number;
      concurrency: number;
    },
    start: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: io.readLen * 2 });
    this.next = start;
  }

  override _read(): void {
    this.wanting = true;
    this.pump();
  }

  private pump(): void {
    while (!this.destroyed && !this.finished && this.slots[0]?.data) {
      const slot = this.slots.shift()!;
      const data = slot.data!;
      if (data.length === 0) {
        // EOF before the requested end: like fs streams, a range past the end is cut short.
        this.finished = true;
        this.push(null);
        return;
      }
      if (data.length < slot.len) {
        // A short read is legal mid-file; the rest is fetched before anything later is emitted.
        const rest = { pos: slot.pos + data.length, len: slot.len - data.length };
        this.slots.unshift(rest);
        this.issue(rest);
      }
      if (!this.push(data)) this.wanting = false;
    }
    if (this.destroyed || this.finished) return;
    if (this.slots.length === 0 && this.next >= this.end) {
      this.finished = true;
      this.push(null);
      return;
    }
    while (this.wanting && this.slots.length < this.io.concurrency && this.next < this.end) {
      const slot = { pos: this.next, len: Math.min(this.io.readLen, this.end - this.next) };
      this.next += slot.len;
      this.slots.push(slot);
      this.issue(slot);
    }
  }

  private issue(slot: ReadSlot): void {
    this.io.readAt(slot.pos, slot.len).then(
      (data) => {
        slot.data = data;
        this.pump();
      },
      (err: Error) => this.destroy(err),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.finished = true;
    this.io.closeHandle();
    cb(err);
  }
}
