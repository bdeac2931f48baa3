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
 */
export class DigestHasher {
  private readonly sha1 = createHash('sha1');
  private readonly sha256 = createHash('sha256');
  private readonly blocks = new BlockHasher(BLOCK_SIZE);
  private bytes = 0;

  update(data: Buffer): void {
    this.sha1.update(data);
    this.sha256.update(data);
    this.blocks.update(data);
    this.bytes += data.length;
  }

  get size(): number {
    return this.bytes;
  }

  /** The digests of everything fed so far; call once. */
  digests(): Digests {
    return {
      sha1: this.sha1.digest('hex'),
      sha256: this.sha256.digest('hex'),
      size: this.bytes,
      blocks: this.blocks.table(),
    };
  }
}

/** The digests of a body already in memory, in one pass. */
export function digestsOf(bytes: Buffer): Digests {
  const hasher = new DigestHasher();
  hasher.update(bytes);
  return hasher.digests();
}
