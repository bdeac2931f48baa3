import { randomUUID } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readdir, rename, stat, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import {
  assertObjectKey,
  assertPartId,
  type ByteRange,
  commitAction,
  isObjectKey,
  isPartId,
  type NodeCapabilities,
  NodeUnavailableError,
  type NodeUsage,
  type ObjectEntry,
  ObjectNotFoundError,
  type PutOptions,
  type StorageNode,
} from './types.ts';

const TMP_DIR = '.tmp';
const PARTS_DIR = '.parts';
const WRITE_BATCH_BYTES = 1024 * 1024;

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** A node that is a directory on this machine: the embedded default and the reference driver. */
export class LocalNode implements StorageNode {
  readonly kind = 'local' as const;
  readonly name: string;
  readonly root: string;

  constructor(root: string) {
    if (!path.isAbsolute(root)) throw new Error(`local node root must be an absolute path, got "${root}"`);
    this.root = path.resolve(root);
    this.name = `local:${this.root}`;
  }

  async connect(): Promise<void> {
    await mkdir(path.join(this.root, TMP_DIR), { recursive: true });
    await mkdir(path.join(this.root, PARTS_DIR), { recursive: true });
  }

  async close(): Promise<void> {}

  capabilities(): NodeCapabilities {
    return { atomicRename: true, fsync: true, statvfs: true, checksMd5: false };
  }

  private pathOf(key: string): string {
    assertObjectKey(key);
    return path.join(this.root, key);
  }

  async put(key: string, source: Readable, expectedSize: number, options: PutOptions = {}): Promise<void> {
    const finalPath = this.pathOf(key);
    if (!Number.isSafeInteger(expectedSize) || expectedSize < 0) {
      source.destroy();
      throw new Error(`invalid expected size ${expectedSize}`);
    }
    const tmpPath = path.join(this.root, TMP_DIR, randomUUID());
    let fh: FileHandle | undefined;
    try {
      fh = await open(tmpPath, 'wx');
      const file = fh;
      let written = 0;
      // Sources come in socket-sized pieces (64 KiB): one writev per megabyte, not a call each.
      let batch: Buffer[] = [];
      let batched = 0;
      // libuv writes every buffer of a writev (it retries short writes), like write.
      const flush = async () => {
        if (batch.length > 0) await file.writev(batch);
        batch = [];
        batched = 0;
      };
      for await (const chunk of source) {
        const buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        written += buf.length;
        // Fail as soon as the source overshoots rather than filling the disk with a wrong object.
        if (written > expectedSize) throw new Error(`size mismatch: more than ${expectedSize} bytes`);
        batch.push(buf);
        batched += buf.length;
        if (batched >= WRITE_BATCH_BYTES) await flush();
      }
      await flush();
      await fh.sync();
      const { size } = await fh.stat();
      if (size !== expectedSize)
        throw new Error(`size mismatch: wrote ${size} bytes, expected ${expectedSize}`);
      await options.beforeCommit?.();
      await fh.close();
      fh = undefined;
      await renameInto(tmpPath, finalPath);
      // The rename is only durable once the directory entry itself reaches the disk.
      await fsyncDir(path.dirname(finalPath));
    } catch (err) {
      source.destroy();
      await fh?.close().catch(() => {});
      await unlink(tmpPath).catch(() => {});
      throw err;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const p = this.pathOf(key);
    if (range && !(range.start >= 0 && range.end >= range.start)) {
      throw new RangeError(`invalid range ${range.start}-${range.end}`);
    }
    let fh: FileHandle;
    try {
      fh = await open(p, 'r');
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR')
        throw new ObjectNotFoundError(`no object ${key}`);
      throw err;
    }
    // Opening first (not stat then open) leaves no window for a delete to turn into a stream error.
    return fh.createReadStream(range ? { start: range.start, end: range.end } : {});
  }

  async stat(key: string): Promise<{ size: number } | null> {
    try {
      const st = await stat(this.pathOf(key));
      return st.isFile() ? { size: st.size } : null;
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.pathOf(key));
    } catch (err) {
      if (errno(err) !== 'ENOENT' && errno(err) !== 'ENOTDIR') throw err;
    }
  }

  async usage(): Promise<NodeUsage> {
    const s = await statfs(this.root);
    return {
      totalBytes: s.blocks * s.bsize,
      // `bavail`, not `bfree`: blocks reserved for root are not ours to fill.
      freeBytes: s.bavail * s.bsize,
      usedBytes: (s.blocks - s.bfree) * s.bsize,
    };
  }

  async ping(): Promise<void> {
    try {
      const st = await stat(this.root);
      if (!st.isDirectory()) throw new Error(`${this.root} is not a directory`);
    } catch (err) {
      throw new NodeUnavailableError(`${this.name}: ${(err as Error).message}`, { cause: err });
    }
  }

  async sweepTmp(olderThanMs: number): Promise<number> {
    const dir = path.join(this.root, TMP_DIR);
    const cutoff = Date.now() - olderThanMs;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (errno(err) === 'ENOENT') return 0;
      throw err;
    }
    let removed = 0;
    for (const name of names) {
      const p = path.join(dir, name);
      try {
        const st = await stat(p);
        if (st.mtimeMs <= cutoff) {
          await unlink(p);
          removed++;
        }
      } catch (err) {
        // Another sweeper or the writer itself got there first.
        if (errno(err) !== 'ENOENT') throw err;
      }
    }
    return removed;
  }

  async *list(prefix = ''): AsyncIterable<ObjectEntry> {
    if (prefix !== '') assertObjectKey(prefix);
    yield* this.walk(prefix);
  }

  /** Depth first, one directory read at a time: memory follows the depth, not the object count. */
  private async *walk(dir: string): AsyncGenerator<ObjectEntry> {
    let entries: Dirent[];
    try {
      entries = await readdir(path.join(this.root, dir), { withFileTypes: true });
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return;
      throw err;
    }
    for (const entry of entries) {
      const key = dir ? `${dir}/${entry.name}` : entry.name;
      if (!isObjectKey(key)) continue;
      if (entry.isDirectory()) {
        yield* this.walk(key);
      } else if (entry.isFile()) {
        try {
          const st = await stat(path.join(this.root, key));
          yield { key, size: st.size, mtimeMs: st.mtimeMs };
        } catch (err) {
          // Deleted since the directory was read.
          if (errno(err) !== 'ENOENT') throw err;
        }
      }
    }
  }

  // ---- part files ----------------------------------------------------------------------------

  private partPath(partId: string): string {
    assertPartId(partId);
    return path.join(this.root, PARTS_DIR, partId);
  }

  async writePart(partId: string, offset: number, data: Buffer): Promise<void> {
    const p = this.partPath(partId);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`invalid offset ${offset}`);
    let fh: FileHandle;
    let created = false;
    try {
      fh = await open(p, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
      created = true;
    } catch (err) {
      if (errno(err) === 'EEXIST') fh = await open(p, constants.O_RDWR);
      else if (errno(err) === 'ENOENT') {
        await mkdir(path.dirname(p), { recursive: true });
        return this.writePart(partId, offset, data);
      } else throw err;
    }
    try {
      let at = 0;
      while (at < data.length) {
        const { bytesWritten } = await fh.write(data, at, data.length - at, offset + at);
        at += bytesWritten;
      }
      await fh.datasync();
    } finally {
      await fh.close();
    }
    // A new file's name must reach the disk too, or a crash could lose acknowledged chunks.
    if (created) await fsyncDir(path.dirname(p));
  }

  async readPart(partId: string, range: ByteRange): Promise<Readable> {
    let fh: FileHandle;
    try {
      fh = await open(this.partPath(partId), 'r');
    } catch (err) {
      if (errno(err) === 'ENOENT') throw new ObjectNotFoundError(`no part ${partId}`);
      throw err;
    }
    return fh.createReadStream({ start: range.start, end: range.end });
  }

  async commitPart(partId: string, key: string, size: number): Promise<void> {
    const partPath = this.partPath(partId);
    const finalPath = this.pathOf(key);
    const part = await stat(partPath).catch((err) => {
      if (errno(err) === 'ENOENT') return null;
      throw err;
    });
    const action = commitAction(part, await this.stat(key), partId, key, size);
    if (action === 'done') return;
    if (action === 'drop') {
      await unlink(partPath).catch(() => {});
      return;
    }
    await renameInto(partPath, finalPath);
    await fsyncDir(path.dirname(finalPath));
  }

  async deletePart(partId: string): Promise<void> {
    await unlink(this.partPath(partId)).catch((err) => {
      if (errno(err) !== 'ENOENT') throw err;
    });
  }

  async *listParts(): AsyncIterable<{ partId: string; mtimeMs: number }> {
    const dir = path.join(this.root, PARTS_DIR);
    const names = await readdir(dir).catch((err) => {
      if (errno(err) === 'ENOENT') return [] as string[];
      throw err;
    });
    for (const name of names) {
      if (!isPartId(name)) continue;
      const st = await stat(path.join(dir, name)).catch(() => null);
      if (st) yield { partId: name, mtimeMs: st.mtimeMs };
    }
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Renames `from` to `to`, making `to`'s directory only when it is missing: the object directories
 * (ab/cd/) nearly always exist, and a mkdir per stored object was a thread-pool round trip each.
 */
async function renameInto(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if (errno(err) !== 'ENOENT') throw err;
    await mkdir(path.dirname(to), { recursive: true });
    await rename(from, to);
  }
}
