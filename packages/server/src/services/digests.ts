import { createHash } from 'node:crypto';
import { BLOCK_SIZE, BlockHasher, type BlockTable } from './block-hashes.ts';

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
 * The first block's digest is the whole-file SHA-256 of its bytes, so it is taken from a copy of
 * that state rather than hashed again: a content of one block (most small files) is hashed twice,
 * not three times, and the block table starts after the first block.
 */
export class DigestHasher {
  private readonly sha1 = createHash('sha1');
  private readonly sha256 = createHash('sha256');
  /** Digest of block 0, once the first BLOCK_SIZE bytes have passed. */
  private firstBlock: Buffer | null = null;
  /** Blocks 1…, from the first byte after block 0. */
  private rest: BlockHasher | null = null;
  private bytes = 0;

  update(data: Buffer): void {
    this.sha1.update(data);
    if (this.rest) {
      this.sha256.update(data);
      this.rest.update(data);
    } else {
      const room = BLOCK_SIZE - this.bytes;
      if (data.length < room) {
        this.sha256.update(data);
      } else {
        this.sha256.update(data.subarray(0, room));
        this.firstBlock = this.sha256.copy().digest();
        const tail = data.subarray(room);
        this.sha256.update(tail);
        this.rest = new BlockHasher(BLOCK_SIZE);
        this.rest.update(tail);
      }
    }
    this.bytes += data.length;
  }

  get size(): number {
    return this.bytes;
  }

  /** The digests of everything fed so far; call once. */
  digests(): Digests {
    const sha256 = this.sha256.digest();
    let hashes: Buffer;
    if (this.firstBlock && this.rest) hashes = Buffer.concat([this.firstBlock, this.rest.table().hashes]);
    else if (this.bytes > 0)
      hashes = sha256; // one block, shorter than BLOCK_SIZE
    else hashes = Buffer.alloc(0);
    return {
      sha1: this.sha1.digest('hex'),
      sha256: sha256.toString('hex'),
      size: this.bytes,
      blocks: { blockSize: BLOCK_SIZE, hashes },
    };
  }
}

/** The digests of a body already in memory, in one pass. */
export function digestsOf(bytes: Buffer): Digests {
  const hasher = new DigestHasher();
  hasher.update(bytes);
  return hasher.digests();
}
