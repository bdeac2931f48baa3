import { createHash } from 'node:crypto';
import os from 'node:os';
import { Piscina } from 'piscina';
import { ONE_BLOCK_MAX } from './block-hashes.ts';
import { chunkBlocks, chunkIdentity } from './chunk-identity.ts';
import { type Digests, heldDigestsOf } from './digests.ts';
import { TransferBuffers } from './transfer-buffers.ts';

export interface ChunkDigest {
  /** Hex MD5, or `''` when none was asked for. */
  md5: string;
  /** The chunk's identity (chunk-identity.ts). */
  identity: string;
  /** The SHA-256 of each 1 MiB block of the chunk, concatenated. */
  blocks: Buffer;
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
 * The MD5 and block SHA-256s (hence the identity) of each uploaded chunk, and the digests of a
 * small file held whole in memory (a one-request upload), computed on worker threads (piscina).
 *
 * An upload keeps the app's own thread busy nearly the whole time — HTTP, ssh2's packets, the
 * in-order whole-file hashes — and these two digests are about a third of that work. On another
 * thread they run beside it: meanwhile the app's thread reads the next chunks off their sockets
 * and writes earlier ones to the nodes.
 *
 * A chunk travels to its thread as a copy that is moved there and moved back with the digests,
 * then kept for the next chunk or content (`TransferBuffers`): one memcpy per chunk and no
 * garbage. (Shared memory would save the copy, but a worker's heap keeps a shared buffer alive
 * until it collects garbage, which it rarely does; copies left to the worker's collector cost
 * 100 MB of peak RSS in the 1 GiB bench.) `threads: 0` hashes on the calling thread.
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
      threads > 0
        ? new Piscina({
            // A plain .mjs file next to this module; the build copies it next to dist/main.js.
            filename: new URL('./chunk-digest-worker.mjs', import.meta.url).href,
            minThreads: threads,
            maxThreads: threads,
          })
        : null;
  }

  async of(data: Buffer, withMd5: boolean): Promise<ChunkDigest> {
    if (!this.pool) return digestHere(data, withMd5);
    const copy = this.copyOf([data], data.length);
    const out = (await this.pool.run({ data: copy, md5: withMd5 }, { transferList: [copy.buffer] })) as {
      md5: string;
      blocks: Uint8Array;
      data: Uint8Array<ArrayBuffer>;
    };
    // The caller keeps its own bytes: the copy is free again at once.
    this.transfers.give(out.data.buffer);
    const blocks = Buffer.from(out.blocks.buffer, out.blocks.byteOffset, out.blocks.byteLength);
    return { md5: out.md5, identity: chunkIdentity(blocks), blocks };
  }

  /**
   * `heldDigestsOf` a content held in memory as `pieces` (`size` bytes in all), and its bytes as
   * one buffer or as the pieces they came in. Call `release` once nothing reads `bytes` any more:
   * the buffer is then reused.
   *
   * Many users sending small files at once keep the app's thread busy with HTTP, multipart parsing
   * and the database; the hashes (two or three passes over every byte) are a third of its work there and
   * run beside it instead. The copy the worker hashes (one memcpy) comes back and is what gets
   * stored.
   */
  async content(pieces: Buffer[], size: number): Promise<HeldContent> {
    if (!this.pool || size < CONTENT_ON_THREAD_MIN) {
      return { digests: heldDigestsOf(pieces, size), bytes: pieces, release: () => {} };
    }
    const copy = this.copyOf(pieces, size);
    const task = { kind: 'content', data: copy, oneBlockMax: ONE_BLOCK_MAX };
    const out = (await this.pool.run(task, { transferList: [copy.buffer] })) as {
      sha1: string;
      sha256: string;
      blockSize: number;
      blocks: Uint8Array;
      data: Uint8Array<ArrayBuffer>;
    };
    const blocks = Buffer.from(out.blocks.buffer, out.blocks.byteOffset, out.blocks.byteLength);
    const held = out.data.buffer;
    return {
      digests: {
        sha1: out.sha1,
        sha256: out.sha256,
        size,
        blocks: { blockSize: out.blockSize, hashes: blocks },
      },
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

function digestHere(data: Buffer, withMd5: boolean): ChunkDigest {
  const blocks = chunkBlocks(data);
  return {
    md5: withMd5 ? createHash('md5').update(data).digest('hex') : '',
    identity: chunkIdentity(blocks),
    blocks,
  };
}
