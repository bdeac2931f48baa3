import { createHash, type Hash } from 'node:crypto';

/**
 * Every content is hashed in fixed blocks (SHA-256 each) so that any byte range can be verified
 * before it is served. 1 MiB divides every upload chunk size that is a whole number of MiB, so a
 * chunk's blocks can later be hashed as that chunk arrives, in any order.
 */
export const BLOCK_SIZE = 1024 * 1024;

/** SHA-256 digest length: the table is the digests concatenated in block order. */
export const BLOCK_HASH_BYTES = 32;

/**
 * A content of at most this size that the server hashes whole, in memory (a one-request upload),
 * gets a table of one block: its whole-file SHA-256. A range read of such a content reads and checks
 * all of it — at most this many bytes — and storing it costs no SHA-256 pass beyond the
 * whole-file one (1 MiB blocks would hash most of its bytes a second time).
 */
export const ONE_BLOCK_MAX = 4 * 1024 * 1024;

/** The table of a content of 1 to ONE_BLOCK_MAX bytes hashed as one block. */
export function oneBlockTable(sha256: Buffer): BlockTable {
  return { blockSize: ONE_BLOCK_MAX, hashes: sha256 };
}

export interface BlockTable {
  blockSize: number;
  /** `BLOCK_HASH_BYTES` per block; the last block may be short. */
  hashes: Buffer;
}

export function blockCount(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize);
}

/** A table that cannot describe `size` bytes (wrong count, no block size) is as good as none. */
export function fitsSize(table: BlockTable | undefined, size: number): table is BlockTable {
  return (
    table !== undefined &&
    Number.isSafeInteger(table.blockSize) &&
    table.blockSize > 0 &&
    table.hashes.length === blockCount(size, table.blockSize) * BLOCK_HASH_BYTES
  );
}

export function blockHash(table: BlockTable, index: number): Buffer {
  return table.hashes.subarray(index * BLOCK_HASH_BYTES, (index + 1) * BLOCK_HASH_BYTES);
}

/** Hashes a stream of bytes, fed in any piece sizes, into a block table. */
export class BlockHasher {
  private hash: Hash = createHash('sha256');
  private filled = 0;
  private readonly digests: Buffer[] = [];

  constructor(readonly blockSize = BLOCK_SIZE) {}

  update(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(this.blockSize - this.filled, chunk.length - at);
      this.hash.update(chunk.subarray(at, at + n));
      this.filled += n;
      at += n;
      if (this.filled === this.blockSize) this.cut();
    }
  }

  /**
   * Appends digests of whole blocks hashed elsewhere (an upload chunk's, on a worker thread);
   * only between blocks.
   */
  append(digests: Uint8Array): void {
    if (this.filled !== 0) throw new Error('block digests can only follow a whole block');
    this.digests.push(Buffer.from(digests.buffer, digests.byteOffset, digests.byteLength));
  }

  /** The table for everything fed so far; call once. */
  table(): BlockTable {
    if (this.filled > 0) this.cut();
    return { blockSize: this.blockSize, hashes: Buffer.concat(this.digests) };
  }

  private cut(): void {
    this.digests.push(this.hash.digest());
    this.hash = createHash('sha256');
    this.filled = 0;
  }
}
