import { randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import {
  assertObjectKey,
  assertPartId,
  type ByteRange,
  commitAction,
  isObjectKey,
  isPartId,
  type NodeCapabilities,
  NodeFullError,
  NodeUnavailableError,
  type NodeUsage,
  type ObjectEntry,
  ObjectNotFoundError,
  type PutOptions,
  type StorageNode,
} from '../types.ts';
import {
  type Conn,
  type FileEntryWithStats,
  SFTP_FAILURE,
  SFTP_NO_SUCH_FILE,
  SftpConnection,
  type SftpError,
  type Stats,
} from './connection.ts';
import { SftpReader } from './reader.ts';
import { writeAll, writeBuffer } from './writer.ts';

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
  /**
   * Refuse a server without `fsync@openssh.com` (default): a write it acknowledges may still be
   * in its page cache, while dfs answers `204` only for bytes on disk. False (`fsync=0` in the
   * URL) accepts such a server, and its writes are then not synced.
   */
  requireFsync?: boolean;
}

const TMP_DIR = '.tmp';
const PARTS_DIR = '.parts';

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
  private readonly root: string;
  private readonly idleMs: number;
  private readonly pingMs: number;
  private readonly concurrency: number;
  private readonly connection: SftpConnection;

  constructor(opts: SftpNodeOptions) {
    if (!posix.isAbsolute(opts.root)) throw new Error(`sftp node root must be absolute, got "${opts.root}"`);
    if (!opts.password && !opts.privateKeyPath)
      throw new Error('sftp node needs a password or a private key');
    this.root = posix.normalize(opts.root).replace(/(.)\/$/, '$1');
    const port = opts.port ?? 22;
    const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    this.name = `sftp://${encodeURIComponent(opts.username)}@${host}:${port}${this.root}`;
    const opMs = opts.timeouts?.opMs ?? 15_000;
    this.idleMs = opts.timeouts?.idleMs ?? 30_000;
    this.pingMs = opts.timeouts?.pingMs ?? Math.min(5_000, opMs);
    this.concurrency = Math.max(1, opts.concurrency ?? 16);
    this.connection = new SftpConnection({
      name: this.name,
      host: opts.host,
      port,
      username: opts.username,
      password: opts.password,
      privateKeyPath: opts.privateKeyPath,
      connectMs: opts.timeouts?.connectMs ?? 10_000,
      opMs,
      dirs: [`${this.root}/${TMP_DIR}`, `${this.root}/${PARTS_DIR}`],
      requireFsync: opts.requireFsync ?? true,
    });
  }

  connect(): Promise<void> {
    return this.connection.connect();
  }

  close(): Promise<void> {
    return this.connection.close();
  }

  capabilities(): NodeCapabilities {
    return this.connection.capabilities();
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
      conn = await this.connection.ensure();
    } catch (err) {
      source.destroy();
      throw err;
    }
    const tmpPath = `${this.root}/${TMP_DIR}/${randomUUID()}`;
    let handle: Buffer | undefined;
    let created = false;
    try {
      handle = await this.connection.req<Buffer>(conn, 'open tmp', (cb) => conn.sftp.open(tmpPath, 'wx', cb));
      created = true;
      await writeAll(this.connection, conn, handle, source, expectedSize, {
        concurrency: this.concurrency,
        idleMs: this.idleMs,
      });
      if (conn.caps.fsync) {
        const h = handle;
        await this.connection.req(conn, 'fsync', (cb) => conn.sftp.ext_openssh_fsync(h, cb));
      }
      const h = handle;
      const st = await this.connection.req<Stats>(conn, 'fstat', (cb) => conn.sftp.fstat(h, cb));
      if (st.size !== expectedSize) {
        throw new Error(`size mismatch: wrote ${st.size} bytes, expected ${expectedSize}`);
      }
      await options.beforeCommit?.();
      handle = undefined;
      await this.connection.req(conn, 'close', (cb) => conn.sftp.close(h, cb));
      await this.publish(conn, tmpPath, finalPath);
      created = false;
    } catch (err) {
      source.destroy();
      if (conn.alive && handle) {
        const h = handle;
        await this.connection.req(conn, 'close', (cb) => conn.sftp.close(h, cb)).catch(() => {});
      }
      // On a dead connection the tmp file stays behind for `sweepTmp`; reconnecting here would only
      // delay the caller's fail-over.
      if (conn.alive && created) {
        await this.connection.req(conn, 'unlink tmp', (cb) => conn.sftp.unlink(tmpPath, cb)).catch(() => {});
      }
      throw err instanceof Error && !(err instanceof NodeUnavailableError) && !conn.alive
        ? this.connection.unavailable('put', err)
        : err;
    }
  }

  /** Moves a finished tmp file over `finalPath`, creating its directories on first use. */
  private async publish(conn: Conn, tmpPath: string, finalPath: string): Promise<void> {
    const move = async () => {
      if (conn.caps.atomicRename) {
        await this.connection.req(conn, 'rename', (cb) =>
          conn.sftp.ext_openssh_rename(tmpPath, finalPath, cb),
        );
        return;
      }
      // Plain SFTP rename refuses an existing target, so replacing one has a window without it.
      await this.connection
        .req(conn, 'unlink old', (cb) => conn.sftp.unlink(finalPath, cb))
        .catch((err: SftpError) => {
          if (err.code !== SFTP_NO_SUCH_FILE) throw err;
        });
      await this.connection.req(conn, 'rename', (cb) => conn.sftp.rename(tmpPath, finalPath, cb));
    };
    try {
      await move();
    } catch (err) {
      if ((err as SftpError).code !== SFTP_NO_SUCH_FILE) throw err;
      // Most keys land in a directory that already exists, so mkdir only costs round trips on a miss.
      await this.connection.mkdirp(conn, posix.dirname(finalPath));
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
    const conn = await this.connection.ensure();
    let handle: Buffer;
    try {
      handle = await this.connection.req<Buffer>(conn, `open ${label}`, (cb) => conn.sftp.open(p, 'r', cb));
    } catch (err) {
      if ((err as SftpError).code === SFTP_NO_SUCH_FILE) throw new ObjectNotFoundError(`no object ${label}`);
      throw err;
    }
    let end = range ? range.end + 1 : -1;
    if (end < 0) {
      // Knowing the size up front saves the read-ahead from probing past EOF.
      const h = handle;
      const st = await this.connection
        .req<Stats>(conn, 'fstat', (cb) => conn.sftp.fstat(h, cb))
        .catch((err) => {
          this.closeHandle(conn, h);
          throw err;
        });
      end = st.size;
    }
    const reader = new SftpReader(
      {
        readAt: (pos, len) =>
          this.connection.req<Buffer>(
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
    if (conn.alive) this.connection.req(conn, 'close', (cb) => conn.sftp.close(handle, cb)).catch(() => {});
  }

  async stat(key: string): Promise<{ size: number } | null> {
    const p = this.pathOf(key);
    const conn = await this.connection.ensure();
    try {
      const st = await this.connection.req<Stats>(conn, `stat ${key}`, (cb) => conn.sftp.stat(p, cb));
      return st.isFile() ? { size: st.size } : null;
    } catch (err) {
      if ((err as SftpError).code === SFTP_NO_SUCH_FILE) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    const p = this.pathOf(key);
    const conn = await this.connection.ensure();
    try {
      await this.connection.req(conn, `delete ${key}`, (cb) => conn.sftp.unlink(p, cb));
    } catch (err) {
      if ((err as SftpError).code !== SFTP_NO_SUCH_FILE) throw err;
    }
  }

  async usage(): Promise<NodeUsage> {
    const conn = await this.connection.ensure();
    if (!conn.caps.statvfs) return { usedBytes: null, freeBytes: null, totalBytes: null };
    const v = await this.connection.req<Record<string, number | bigint>>(conn, 'statvfs', (cb) =>
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
    const conn = await this.connection.ensure();
    const st = await this.connection.req<Stats>(
      conn,
      'ping',
      (cb) => conn.sftp.stat(this.root, cb),
      this.pingMs,
    );
    if (!st.isDirectory()) throw new NodeUnavailableError(`${this.name}: root is not a directory`);
  }

  async sweepTmp(olderThanMs: number): Promise<number> {
    const conn = await this.connection.ensure();
    const dir = `${this.root}/${TMP_DIR}`;
    const entries = await this.connection.req<FileEntryWithStats[]>(conn, 'readdir tmp', (cb) =>
      conn.sftp.readdir(dir, cb),
    );
    // SFTP mtimes have one-second resolution, so "older than 0 ms" must include the current second.
    const cutoff = Math.floor((Date.now() - olderThanMs) / 1000);
    let removed = 0;
    for (const e of entries) {
      if (e.filename === '.' || e.filename === '..' || e.attrs.mtime > cutoff) continue;
      try {
        await this.connection.req(conn, 'unlink tmp', (cb) => conn.sftp.unlink(`${dir}/${e.filename}`, cb));
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
    const conn = await this.connection.ensure();
    const p = dir ? `${this.root}/${dir}` : this.root;
    let entries: FileEntryWithStats[];
    try {
      entries = await this.connection.req<FileEntryWithStats[]>(conn, `readdir ${dir || '/'}`, (cb) =>
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
    const conn = await this.connection.ensure();
    const handle = await this.openPart(conn, p);
    try {
      await writeBuffer(this.connection, conn, handle, data, offset, {
        concurrency: this.concurrency,
        idleMs: this.idleMs,
      });
      if (conn.caps.fsync) {
        await this.connection.req(conn, 'fsync part', (cb) => conn.sftp.ext_openssh_fsync(handle, cb));
      }
    } catch (err) {
      throw await this.fullOr(conn, err, data.length);
    } finally {
      this.closeHandle(conn, handle);
    }
  }

  /**
   * `NodeFullError` for a write that failed for lack of room, else `err`. SFTPv3 has no status
   * for a full disk: OpenSSH answers ENOSPC with a plain FAILURE, so the disk's free space decides.
   */
  private async fullOr(conn: Conn, err: unknown, bytes: number): Promise<unknown> {
    if ((err as SftpError).code !== SFTP_FAILURE || !conn.alive || !conn.caps.statvfs) return err;
    const free = await this.usage().then(
      (u) => u.freeBytes,
      () => null,
    );
    if (free === null || free >= bytes) return err;
    return new NodeFullError(`${this.name}: no room left on the disk (${free} bytes free)`, { cause: err });
  }

  /** Opens a part file for positioned writes, creating it without truncating a concurrent writer's. */
  private async openPart(conn: Conn, p: string): Promise<Buffer> {
    const open = (flags: 'r+' | 'wx') =>
      this.connection.req<Buffer>(conn, `open part (${flags})`, (cb) => conn.sftp.open(p, flags, cb));
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

  async readPart(partId: string, range: ByteRange): Promise<Readable> {
    if (!(Number.isSafeInteger(range.start) && range.start >= 0 && range.end >= range.start)) {
      throw new RangeError(`invalid range ${range.start}-${range.end}`);
    }
    return this.readFile(this.partPath(partId), `part ${partId}`, range);
  }

  async commitPart(partId: string, key: string, size: number): Promise<void> {
    const partPath = this.partPath(partId);
    const finalPath = this.pathOf(key);
    const conn = await this.connection.ensure();
    const part = await this.connection
      .req<Stats>(conn, 'stat part', (cb) => conn.sftp.stat(partPath, cb))
      .catch((err: SftpError) => {
        if (err.code === SFTP_NO_SUCH_FILE) return null;
        throw err;
      });
    const action = commitAction(part, await this.stat(key), partId, key, size);
    if (action === 'done') return;
    if (action === 'drop') {
      await this.deletePart(partId);
      return;
    }
    await this.publish(conn, partPath, finalPath);
  }

  async deletePart(partId: string): Promise<void> {
    const p = this.partPath(partId);
    const conn = await this.connection.ensure();
    try {
      await this.connection.req(conn, `delete part ${partId}`, (cb) => conn.sftp.unlink(p, cb));
    } catch (err) {
      if ((err as SftpError).code !== SFTP_NO_SUCH_FILE) throw err;
    }
  }

  async *listParts(): AsyncIterable<{ partId: string; mtimeMs: number }> {
    const conn = await this.connection.ensure();
    const entries = await this.connection
      .req<FileEntryWithStats[]>(conn, 'readdir parts', (cb) =>
        conn.sftp.readdir(`${this.root}/${PARTS_DIR}`, cb),
      )
      .catch((err: SftpError) => {
        if (err.code === SFTP_NO_SUCH_FILE) return [] as FileEntryWithStats[];
        throw err;
      });
    for (const e of entries) {
      if (isPartId(e.filename) && e.attrs.isFile())
        yield { partId: e.filename, mtimeMs: e.attrs.mtime * 1000 };
    }
  }
}
