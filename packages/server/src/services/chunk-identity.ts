import { createHash } from 'node:crypto';
import { BLOCK_HASH_BYTES, BLOCK_SIZE, BlockHasher } from './block-hashes.ts';

/**
 * How an acknowledged chunk is recognised when it comes again (an idempotent resend, or other
 * bytes for the same index) and when it is read back from a node: a SHA-256 over its bytes, taken
 * in the content's 1 MiB blocks.
 *
 * The chunk's block digests are exactly the entries of the content's block table when the chunk
 * starts on a block boundary (chunk sizes are whole MiB), so one SHA-256 pass per chunk gives both
 * its identity and its share of the table, instead of one pass for each. A chunk of one block is
 * identified by that block's digest (its plain SHA-256); a longer one by the SHA-256 of its block
 * digests in order.
 */

/** The SHA-256 of each BLOCK_SIZE slice of `data`, concatenated in order (the last may be short). */
export function chunkBlocks(data: Buffer): Buffer {
  const hasher = new BlockHasher(BLOCK_SIZE);
  hasher.update(data);
  return hasher.table().hashes;
}

/** A chunk's identity (hex) from its block digests. */
export function chunkIdentity(blocks: Uint8Array): string {
  if (blocks.length === BLOCK_HASH_BYTES) return Buffer.from(blocks).toString('hex');
  return createHash('sha256').update(blocks).digest('hex');
}

/**
 * The identity chunks of more than one block had before identities were taken over blocks (the
 * SHA-256 of the whole chunk), which upload rows written then still carry; null for a chunk of one
 * block, whose identity never changed.
 */
export function legacyChunkIdentity(data: Buffer): string | null {
  return data.length > BLOCK_SIZE ? createHash('sha256').update(data).digest('hex') : null;
}

/** The block digests of `data` when it is the chunk recorded as `identity`, else null. */
export function matchChunk(data: Buffer, identity: string): Buffer | null {
  const blocks = chunkBlocks(data);
  return chunkIdentity(blocks) === identity || legacyChunkIdentity(data) === identity ? blocks : null;
}
