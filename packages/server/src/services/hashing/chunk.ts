import { createHash } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { BLOCK_SIZE, BlockHasher, blockRoot } from './blocks.ts';

/**
 * What the server computes of one uploaded chunk before acknowledging it: the SHA-256 of each of
 * its 1 MiB blocks (its share of the content's block table, and hence its identity) and, when the
 * client sent one, the checksum it is checked against on arrival.
 *
 * How an acknowledged chunk is recognised when it comes again (an idempotent resend, or other
 * bytes for the same index) and when it is read back from a node: the root of its block digests
 * (blocks.ts `blockRoot`). Chunk sizes are whole MiB, so a chunk starts on a block boundary and its
 * block digests are exactly entries of the content's table: one SHA-256 pass per chunk gives both.
 */

/** The SHA-256 of each BLOCK_SIZE slice of `data`, concatenated in order (the last may be short). */
export function chunkBlocks(data: Uint8Array): Buffer {
  const hasher = new BlockHasher(BLOCK_SIZE);
  hasher.update(data);
  return hasher.table().hashes;
}

/** A chunk's identity (hex) from its block digests. */
export function chunkIdentity(blocks: Uint8Array): string {
  return blockRoot(blocks);
}

/**
 * The identity chunks of more than one block had before identities were taken over blocks (the
 * SHA-256 of the whole chunk), which upload rows written then still carry; null for a chunk of one
 * block, whose identity never changed.
 */
export function legacyChunkIdentity(data: Uint8Array): string | null {
  return data.length > BLOCK_SIZE ? createHash('sha256').update(data).digest('hex') : null;
}

/** The block digests of `data` when it is the chunk recorded as `identity`, else null. */
export function matchChunk(data: Uint8Array, identity: string): Buffer | null {
  const blocks = chunkBlocks(data);
  return chunkIdentity(blocks) === identity || legacyChunkIdentity(data) === identity ? blocks : null;
}

/** A checksum a client sent with a chunk (routes/uploads.ts reads it off the headers). */
export type ChunkChecksum = { algorithm: 'crc32c'; value: number } | { algorithm: 'md5'; hex: string };

/**
 * CRC-32C (Castagnoli) of `data`: the wire check of a chunk. A CRC, not a second cryptographic
 * hash: a chunk's integrity in transit needs an error-detecting code, and CRC-32C costs about a
 * sixth of MD5 here (RFC 9530 names it `crc32c`).
 */
export function crc32cOf(data: Uint8Array): number {
  return crc32c(data) >>> 0;
}

/** What the server computes of a chunk on arrival: its block digests, and its checksum's verdict (null: none sent). */
export function digestChunk(
  data: Uint8Array,
  checksum: ChunkChecksum | null,
): { blocks: Buffer; checksumOk: boolean | null } {
  return { blocks: chunkBlocks(data), checksumOk: checksum ? checksumMatches(data, checksum) : null };
}

/** Whether `data` matches the checksum its client sent. */
export function checksumMatches(data: Uint8Array, checksum: ChunkChecksum): boolean {
  if (checksum.algorithm === 'crc32c') return crc32cOf(data) === checksum.value;
  return createHash('md5').update(data).digest('hex') === checksum.hex;
}
