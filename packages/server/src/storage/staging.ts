import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** What a staged piece turned out to be; the caller decides whether to keep it. */
export interface StagedPiece {
  size: number;
  md5: string;
  /** Only when asked for: the chunked path never needs a chunk's SHA-1. */
  sha1: string | null;
}

export class StagedSizeError extends Error {
  override readonly name = 'StagedSizeError';
  constructor(readonly received: number) {
    super(`received ${received} bytes`);
  }
}

const UPLOAD_ID = /^[0-9a-f-]{36}$/;

/**
 * Upload bytes between the chunk PUTs and `complete`, on local disk under the data dir. A piece
 * is written to a tmp file, fsynced and renamed into place before it is acknowledged, so a crash
 * never leaves a half chunk that looks whole and staging survives restarts.
 */
export class StagingArea {
  private readonly tmpDir: string;

  constructor(private readonly root: string) {
    this.tmpDir = path.join(root, '.tmp');
  }

  async init(): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true });
  }

  private dirOf(uploadId: string): string {
    if (!UPLOAD_ID.test(uploadId)) throw new Error(`not an upload id: ${uploadId}`);
    return path.join(this.root, uploadId);
  }

  private pathOf(uploadId: string, index: number): string {
    return path.join(this.dirOf(uploadId), String(index));
  }

  /**
   * Streams `source` into the chunk file, hashing as it goes. `maxBytes` stops an oversize body
   * without buffering it; `accept` sees the hashes before the rename and may throw to discard.
   */
  async writePiece(
    uploadId: string,
    index: number,
    source: Readable,
    maxBytes: number,
    accept: (piece: StagedPiece) => void | Promise<void>,
    options: { sha1?: boolean } = {},
  ): Promise<StagedPiece> {
    const tmp = path.join(this.tmpDir, `${uploadId}.${index}.${randomUUID()}`);
    const md5 = createHash('md5');
    const sha1 = options.sha1 ? createHash('sha1') : null;
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.length;
        if (size > maxBytes) return done(new StagedSizeError(size));
        md5.update(chunk);
        sha1?.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(source, meter, createWriteStream(tmp, { highWaterMark: 1024 * 1024 }));
      const piece = { size, md5: md5.digest('hex'), sha1: sha1?.digest('hex') ?? null };
      await accept(piece);
      await fsyncPath(tmp);
      const dir = this.dirOf(uploadId);
      await mkdir(dir, { recursive: true });
      await rename(tmp, this.pathOf(uploadId, index));
      await fsyncPath(dir);
      return piece;
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
  }

  /** The staged pieces `0..count-1` as one ordered stream (read once by `complete`). */
  readAll(uploadId: string, count: number): Readable {
    const paths = Array.from({ length: count }, (_, i) => this.pathOf(uploadId, i));
    return Readable.from(
      (async function* () {
        for (const file of paths) {
          yield* createReadStream(file, { highWaterMark: 1024 * 1024 });
        }
      })(),
      { objectMode: false, highWaterMark: 1024 * 1024 },
    );
  }

  /** Reads back the piece sizes actually on disk (the database may be ahead after a crash). */
  async pieceSize(uploadId: string, index: number): Promise<number | null> {
    try {
      return (await stat(this.pathOf(uploadId, index))).size;
    } catch {
      return null;
    }
  }

  async remove(uploadId: string): Promise<void> {
    await rm(this.dirOf(uploadId), { recursive: true, force: true });
  }

  /** Upload ids that have bytes here, for the sweeper to match against the database. */
  async uploadIds(): Promise<string[]> {
    const entries = await readdir(this.root, { withFileTypes: true }).catch(() => []);
    return entries.filter((e) => e.isDirectory() && UPLOAD_ID.test(e.name)).map((e) => e.name);
  }

  /** Removes tmp files older than `olderThanMs` (left by interrupted requests). */
  async sweepTmp(olderThanMs: number, now: number): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const file = path.join(this.tmpDir, name);
      const info = await stat(file).catch(() => null);
      if (info && now - info.mtimeMs > olderThanMs) {
        await rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }

  /** Bytes an unprivileged writer may still put on the filesystem that holds staging. */
  async freeBytes(): Promise<number> {
    const fs = await statfs(this.root);
    return fs.bavail * fs.bsize;
  }

  /** Where single-request uploads stage their one piece. */
  scratchId(): string {
    return randomUUID();
  }
}

async function fsyncPath(target: string): Promise<void> {
  const handle = await open(target, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
