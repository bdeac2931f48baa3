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
 * Contents stored before the hash budget (one-request uploads of up to this size) have a table of
 * one block: their whole-file SHA-256. They are still read and verified by it; new contents always
 * get 1 MiB blocks, so that the same bytes have the same table (and root) whichever way they came.
 */
export const ONE_BLOCK_MAX = 4 * 1024 * 1024;

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

/** The SHA-256 of one block's bytes: the only hash a verified read computes. */
export function blockDigest(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/**
 * The root of a table of BLOCK_SIZE blocks (hex): the digest itself for one block, else the
 * SHA-256 of the digests in order. It names the bytes as strongly as a SHA-256 pass over them
 * (the table is a SHA-256 of every byte), at the cost of hashing 32 bytes per MiB: it is what
 * the collision check compares, and a chunk's identity is the root of its own blocks.
 */
export function blockRoot(hashes: Uint8Array): string {
  if (hashes.length === BLOCK_HASH_BYTES) return Buffer.from(hashes).toString('hex');
  return createHash('sha256').update(hashes).digest('hex');
}

/**
 * The root of a stored content's table, when it can be had from the table alone: a table of
 * BLOCK_SIZE blocks, or a one-block table of a content no bigger than BLOCK_SIZE (whose single
 * digest is the same either way). Null for an older one-block table of a bigger content.
 */
export function rootOfTable(table: BlockTable, size: number): string | null {
  // An empty content has no blocks: its root is the SHA-256 of nothing, whatever its table says.
  if (size === 0) return blockRoot(Buffer.alloc(0));
  if (!fitsSize(table, size)) return null;
  if (table.blockSize === BLOCK_SIZE || size <= BLOCK_SIZE) return blockRoot(table.hashes);
  return null;
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

  update(chunk: Uint8Array): void {
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
