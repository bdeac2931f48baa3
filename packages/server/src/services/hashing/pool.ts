import os from 'node:os';
import { Piscina } from 'piscina';
import { BLOCK_SIZE } from './blocks.ts';
import { type ChunkChecksum, chunkIdentity, digestChunk } from './chunk.ts';
import { type Digests, digestsOf } from './content.ts';
import { TransferBuffers } from './transfer-buffers.ts';
import type { ChunkResult, ContentResult, DigestTask } from './worker.ts';

export interface ChunkDigest {
  /** The chunk's identity (chunk.ts). */
  identity: string;
  /** The SHA-256 of each 1 MiB block of the chunk, concatenated. */
  blocks: Buffer;
  /** Whether the bytes match the checksum their client sent; null when none was given. */
  checksumOk: boolean | null;
}

/** A content's digests and its bytes, held until `release`. */
export interface HeldContent {
  digests: Digests;
  bytes: Buffer[];
  release: () => void;
}

/** One thread fewer than the cores (the app's own thread keeps one), at least one, at most four. */
export function defaultDigestThreads(): number {
  return Math.min(4, Math.max(1, os.availableParallelism() - 1));
}

/**
 * Below this a content is hashed on the app's thread: handing it to a worker would cost about as
 * much as hashing it.
 */
export const CONTENT_ON_THREAD_MIN = 64 * 1024;

/**
 * The thread's code is worker.ts, the same functions the app's thread runs: from the sources
 * (tests, `pnpm dev`) it is loaded through tsx like the rest; the build bundles it beside
 * dist/main.js as hash-worker.js.
 */
function workerOptions(): { filename: string; execArgv?: string[] } {
  if (import.meta.url.endsWith('.ts')) {
    // Only the loader: a thread refuses the process-wide flags a parent may run with
    // (--trace-gc, --max-semi-space-size…), and a profiler's would make each thread write one.
    return { filename: new URL('./worker.ts', import.meta.url).href, execArgv: ['--import', 'tsx'] };
  }
  return { filename: new URL('./hash-worker.js', import.meta.url).href };
}

/**
 * The block SHA-256s (hence the identity) and the client's checksum of each uploaded chunk, and
 * the digests of a small file held whole in memory (a one-request upload), computed on worker
 * threads (piscina).
 *
 * An upload keeps the app's own thread busy nearly the whole time — HTTP, ssh2's packets, the
 * in-order SHA-1 — and the block digests are about a third of that work. On another thread they
 * run beside it: meanwhile the app's thread reads the next chunks off their sockets and writes
 * earlier ones to the nodes.
 *
 * A chunk body the app read into a buffer of its own is moved to its thread and back with the
 * digests (`ofOwned`): no copy. Other bytes travel as a copy that is moved there and back, then
 * kept for the next chunk or content (`TransferBuffers`): one memcpy and no garbage. (Shared
 * memory would save the copy, but a worker's heap keeps a shared buffer alive until it collects
 * garbage, which it rarely does; copies left to the worker's collector cost 100 MB of peak RSS in
 * the 1 GiB bench.) `threads: 0` hashes on the calling thread.
 */
export class ChunkDigests {
  private readonly pool: Piscina | null;
  private readonly transfers: TransferBuffers;

  constructor(
    private readonly chunkSize: number,
    threads = defaultDigestThreads(),
  ) {
    // Room for four chunks in flight, and for the many small contents of a busy server.
    this.transfers = new TransferBuffers(Math.max(64 * 1024 * 1024, 4 * chunkSize));
    this.pool =
      threads > 0 ? new Piscina({ ...workerOptions(), minThreads: threads, maxThreads: threads }) : null;
  }

  async of(data: Buffer, checksum: ChunkChecksum | null = null): Promise<ChunkDigest> {
    if (!this.pool) {
      const { blocks, checksumOk } = digestChunk(data, checksum);
      return { identity: chunkIdentity(blocks), blocks, checksumOk };
    }
    const out = await this.sendChunk(this.pool, this.copyOf([data], data.length), checksum);
    // The caller keeps its own bytes: the copy is free again at once.
    this.transfers.give(out.data.buffer);
    return chunkDigestOf(out);
  }

  /**
   * `of` for a chunk the caller owns whole (a buffer of its own that nothing else views): the
   * bytes travel to the thread and back instead of being copied, sparing a memcpy and a copy's
   * memory per chunk in flight. `data` is detached once this is called; `bytes` are the same
   * bytes, back. A buffer that is a view into a larger one is copied as `of` would.
   */
  async ofOwned(
    data: Buffer,
    checksum: ChunkChecksum | null = null,
  ): Promise<ChunkDigest & { bytes: Buffer }> {
    const whole =
      data.buffer instanceof ArrayBuffer &&
      data.byteOffset === 0 &&
      data.byteLength === data.buffer.byteLength;
    if (!this.pool || !whole) return { ...(await this.of(data, checksum)), bytes: data };
    const out = await this.sendChunk(this.pool, new Uint8Array(data.buffer as ArrayBuffer), checksum);
    return {
      ...chunkDigestOf(out),
      bytes: Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength),
    };
  }

  /** Moves `data` to a thread and has it back with its digests. */
  private async sendChunk(
    pool: Piscina,
    data: Uint8Array<ArrayBuffer>,
    checksum: ChunkChecksum | null,
  ): Promise<ChunkResult> {
    const task: DigestTask = { kind: 'chunk', data, checksum };
    return (await pool.run(task, { transferList: [data.buffer] })) as ChunkResult;
  }

  /**
   * The digests of a content held in memory as `pieces` (`size` bytes in all), and its bytes as
   * one buffer or as the pieces they came in. Call `release` once nothing reads `bytes` any more:
   * the buffer is then reused.
   *
   * Many users sending small files at once keep the app's thread busy with HTTP, multipart parsing
   * and the database; the hashes (two passes over every byte) are a third of its work there and
   * run beside it instead. The copy the worker hashes (one memcpy) comes back and is what gets
   * stored.
   */
  async content(pieces: Buffer[], size: number): Promise<HeldContent> {
    if (!this.pool || size < CONTENT_ON_THREAD_MIN) {
      return { digests: digestsOf(...pieces), bytes: pieces, release: () => {} };
    }
    const copy = this.copyOf(pieces, size);
    const task: DigestTask = { kind: 'content', data: copy };
    const out = (await this.pool.run(task, { transferList: [copy.buffer] })) as ContentResult;
    const hashes = Buffer.from(out.blocks.buffer, out.blocks.byteOffset, out.blocks.byteLength);
    const held = out.data.buffer;
    return {
      digests: { sha1: out.sha1, size, blocks: { blockSize: BLOCK_SIZE, hashes }, root: out.root },
      bytes: [Buffer.from(held, out.data.byteOffset, out.data.byteLength)],
      release: () => this.transfers.give(held),
    };
  }

  /** Chunk-sized copies waiting for reuse (for tests). */
  spareCount(): number {
    return this.transfers.pooledCount(this.chunkSize);
  }

  /** `pieces` (`size` bytes in all) in a reused buffer that can be moved to a thread. */
  private copyOf(pieces: Buffer[], size: number): Uint8Array<ArrayBuffer> {
    const copy = new Uint8Array(this.transfers.take(size), 0, size);
    let at = 0;
    for (const piece of pieces) {
      copy.set(piece, at);
      at += piece.length;
    }
    return copy;
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
  }
}

function chunkDigestOf(out: ChunkResult): ChunkDigest {
  const blocks = Buffer.from(out.blocks.buffer, out.blocks.byteOffset, out.blocks.byteLength);
  return { identity: chunkIdentity(blocks), blocks, checksumOk: out.checksumOk };
}
