import { createHash } from 'node:crypto';
import {
  BLOCK_HASH_BYTES,
  BLOCK_SIZE,
  BlockHasher,
  type BlockTable,
  blockCount,
  ONE_BLOCK_MAX,
  oneBlockTable,
} from './block-hashes.ts';

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
  /** The table from block 1 on; block 0's digest is appended from the whole-file state. */
  private readonly blocks = new BlockHasher(BLOCK_SIZE);
  private bytes = 0;

  /** Feeds the next bytes; `given`: their block digests, when they start on a block boundary. */
  update(data: Buffer, given?: Uint8Array): void {
    this.sha1.update(data);
    const whole =
      given &&
      this.bytes % BLOCK_SIZE === 0 &&
      given.length === blockCount(data.length, BLOCK_SIZE) * BLOCK_HASH_BYTES
        ? Math.floor(data.length / BLOCK_SIZE)
        : 0;
    if (whole > 0) {
      // Whole blocks only: a short last one is hashed below, so more bytes may still follow it.
      this.sha256.update(data.subarray(0, whole * BLOCK_SIZE));
      this.blocks.append((given as Uint8Array).subarray(0, whole * BLOCK_HASH_BYTES));
      this.bytes += whole * BLOCK_SIZE;
      data = data.subarray(whole * BLOCK_SIZE);
    }
    if (this.bytes < BLOCK_SIZE) {
      // Inside block 0: its digest is the whole-file state once the block is full.
      const head = data.subarray(0, BLOCK_SIZE - this.bytes);
      this.sha256.update(head);
      this.bytes += head.length;
      data = data.subarray(head.length);
      if (this.bytes === BLOCK_SIZE) this.blocks.append(this.sha256.copy().digest());
    }
    this.sha256.update(data);
    this.blocks.update(data);
    this.bytes += data.length;
  }

  get size(): number {
    return this.bytes;
  }

  /** The digests of everything fed so far; call once. */
  digests(): Digests {
    const sha256 = this.sha256.digest();
    // Shorter than one block: the whole-file digest is block 0's.
    const blocks =
      this.bytes > 0 && this.bytes < BLOCK_SIZE
        ? { blockSize: BLOCK_SIZE, hashes: sha256 }
        : this.blocks.table();
    return {
      sha1: this.sha1.digest('hex'),
      sha256: sha256.toString('hex'),
      size: this.bytes,
      blocks,
    };
  }
}

/** The digests of a body already in memory, in one pass. */
export function digestsOf(bytes: Buffer): Digests {
  const hasher = new DigestHasher();
  hasher.update(bytes);
  return hasher.digests();
}

/**
 * The digests of a content held whole in memory as `pieces` (`size` bytes in all): up to
 * ONE_BLOCK_MAX bytes its table is one block, its whole-file SHA-256, so its bytes are hashed
 * twice (SHA-1, SHA-256) and not three times; above, DigestHasher's 1 MiB blocks.
 * chunk-digest-worker.mjs computes the same on a thread; a unit test holds them equal.
 */
export function heldDigestsOf(pieces: Buffer[], size: number): Digests {
  if (size === 0 || size > ONE_BLOCK_MAX) {
    const hasher = new DigestHasher();
    for (const piece of pieces) hasher.update(piece);
    return hasher.digests();
  }
  const sha1 = createHash('sha1');
  const sha256 = createHash('sha256');
  for (const piece of pieces) {
    sha1.update(piece);
    sha256.update(piece);
  }
  const whole = sha256.digest();
  return { sha1: sha1.digest('hex'), sha256: whole.toString('hex'), size, blocks: oneBlockTable(whole) };
}
