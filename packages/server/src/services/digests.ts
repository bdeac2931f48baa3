import { createHash, type Hash } from 'node:crypto';
import { BLOCK_HASH_BYTES, BLOCK_SIZE, type BlockTable, blockCount } from './block-hashes.ts';

/** What every stored content records about its bytes, computed by the server itself. */
export interface Digests {
  sha1: string;
  sha256: string;
  size: number;
  blocks: BlockTable;
}

/**
 * SHA-1, SHA-256, the per-block SHA-256 table and the size of bytes fed in order: the one pass
 * over a content's bytes wherever they arrive (a chunked upload's running hash, a one-request
 * upload, bytes streamed to the nodes).
 *
 * A piece that starts on a block boundary may come with its block digests already computed (an
 * upload chunk's, hashed on a worker thread as it arrived): its whole blocks go into the table as
 * they are.
 * Otherwise the blocks are hashed here; the first block's digest is then the whole-file SHA-256 of
 * its bytes, so it is taken from a copy of that state rather than hashed again: a content of one
 * block (most small files) is hashed twice, not three times.
 */
export class DigestHasher {
  private readonly sha1 = createHash('sha1');
  private readonly sha256 = createHash('sha256');
  /** Block digests so far, in order. */
  private readonly table: Buffer[] = [];
  /** The block being filled, from block 1 on (block 0 comes from the whole-file state). */
  private block: Hash | null = null;
  /** Bytes in the block being filled. */
  private filled = 0;
  private bytes = 0;

  /** Feeds the next bytes; `blocks`: their block digests, when they start on a block boundary. */
  update(data: Buffer, blocks?: Uint8Array): void {
    this.sha1.update(data);
    if (
      blocks &&
      this.filled === 0 &&
      blocks.length === blockCount(data.length, BLOCK_SIZE) * BLOCK_HASH_BYTES
    ) {
      // Whole blocks only: a short last one is hashed below, so more bytes may still follow it.
      const whole = Math.floor(data.length / BLOCK_SIZE);
      if (whole > 0) {
        this.sha256.update(data.subarray(0, whole * BLOCK_SIZE));
        this.table.push(Buffer.from(blocks.buffer, blocks.byteOffset, whole * BLOCK_HASH_BYTES));
        this.bytes += whole * BLOCK_SIZE;
        data = data.subarray(whole * BLOCK_SIZE);
      }
    }
    let at = 0;
    // Block 0 is the whole-file state so far: nothing to hash separately.
    if (this.bytes < BLOCK_SIZE) {
      at = Math.min(BLOCK_SIZE - this.bytes, data.length);
      this.sha256.update(data.subarray(0, at));
      this.filled += at;
      if (this.filled === BLOCK_SIZE) this.cut();
      if (at < data.length) this.sha256.update(data.subarray(at));
    } else {
      this.sha256.update(data);
    }
    while (at < data.length) {
      const n = Math.min(BLOCK_SIZE - this.filled, data.length - at);
      this.block ??= createHash('sha256');
      this.block.update(data.subarray(at, at + n));
      at += n;
      this.filled += n;
      if (this.filled === BLOCK_SIZE) this.cut();
    }
    this.bytes += data.length;
  }

  get size(): number {
    return this.bytes;
  }

  /** The digests of everything fed so far; call once. */
  digests(): Digests {
    const sha256 = this.sha256.digest();
    if (this.filled > 0) {
      // A short last block; alone, it is the whole content.
      this.table.push(this.block ? this.block.digest() : sha256);
    }
    return {
      sha1: this.sha1.digest('hex'),
      sha256: sha256.toString('hex'),
      size: this.bytes,
      blocks: { blockSize: BLOCK_SIZE, hashes: Buffer.concat(this.table) },
    };
  }

  private cut(): void {
    this.table.push(this.block ? this.block.digest() : this.sha256.copy().digest());
    this.block = null;
    this.filled = 0;
  }
}

/** The digests of a body already in memory, in one pass. */
export function digestsOf(bytes: Buffer): Digests {
  const hasher = new DigestHasher();
  hasher.update(bytes);
  return hasher.digests();
}
