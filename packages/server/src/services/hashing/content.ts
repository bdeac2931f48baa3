import { createHash } from 'node:crypto';
import {
  BLOCK_HASH_BYTES,
  BLOCK_SIZE,
  BlockHasher,
  type BlockTable,
  blockCount,
  blockRoot,
} from './blocks.ts';

/** What every stored content records about its bytes, computed by the server itself. */
export interface Digests {
  /** The content's identity: the instant-upload key clients send. */
  sha1: string;
  size: number;
  /** The SHA-256 of every 1 MiB block: what each read is verified against. */
  blocks: BlockTable;
  /** The table's root (blocks.ts `blockRoot`): what a SHA-1 collision is caught by. */
  root: string;
}

/**
 * The server's hash budget for a content, wherever its bytes arrive (a chunked upload's running
 * hash, a one-request or batch upload, tus, WebDAV, the Nextcloud chunked upload, bytes streamed
 * to the nodes): one SHA-1 pass and one pass of block SHA-256s, nothing else. The table's root
 * stands in for a whole-file SHA-256 (it is as strong, and costs 32 bytes per MiB).
 *
 * A piece that starts on a block boundary may come with its block digests already computed (an
 * upload chunk's, hashed on a digest thread as it arrived): its whole blocks go into the table as
 * they are, and only the SHA-1 runs here.
 */
export class DigestHasher {
  private readonly sha1 = createHash('sha1');
  private readonly blocks = new BlockHasher(BLOCK_SIZE);
  private bytes = 0;

  /** Feeds the next bytes; `given`: their block digests, when they start on a block boundary. */
  update(data: Uint8Array, given?: Uint8Array): void {
    this.sha1.update(data);
    const whole =
      given &&
      this.bytes % BLOCK_SIZE === 0 &&
      given.length === blockCount(data.length, BLOCK_SIZE) * BLOCK_HASH_BYTES
        ? Math.floor(data.length / BLOCK_SIZE)
        : 0;
    if (whole > 0) {
      // Whole blocks only: a short last one is hashed below, so more bytes may still follow it.
      this.blocks.append((given as Uint8Array).subarray(0, whole * BLOCK_HASH_BYTES));
      this.bytes += whole * BLOCK_SIZE;
      data = data.subarray(whole * BLOCK_SIZE);
    }
    this.blocks.update(data);
    this.bytes += data.length;
  }

  get size(): number {
    return this.bytes;
  }

  /** The digests of everything fed so far; call once. */
  digests(): Digests {
    const blocks = this.blocks.table();
    return { sha1: this.sha1.digest('hex'), size: this.bytes, blocks, root: blockRoot(blocks.hashes) };
  }
}

/** The digests of a content held in memory as `pieces`, in one pass of each hash. */
export function digestsOf(...pieces: Uint8Array[]): Digests {
  const hasher = new DigestHasher();
  for (const piece of pieces) hasher.update(piece);
  return hasher.digests();
}
