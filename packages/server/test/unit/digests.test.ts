import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE } from '../../src/services/hashing/blocks.ts';
import { chunkBlocks } from '../../src/services/hashing/chunk.ts';
import { DigestHasher } from '../../src/services/hashing/content.ts';
import { blockTableOf } from '../support/bytes.ts';

/** The digests computed the plain way: each hash over the whole bytes, each block on its own. */
function reference(bytes: Buffer) {
  const hashes = blockTableOf(bytes, BLOCK_SIZE);
  return {
    sha1: createHash('sha1').update(bytes).digest('hex'),
    size: bytes.length,
    blocks: { blockSize: BLOCK_SIZE, hashes },
    // The root: a one-block content's block digest (its SHA-256), else the SHA-256 of the table.
    root:
      hashes.length === 32
        ? createHash('sha256').update(bytes).digest('hex')
        : createHash('sha256').update(hashes).digest('hex'),
  };
}

describe('DigestHasher', () => {
  const sizes = [
    0,
    1,
    65_536,
    BLOCK_SIZE - 1,
    BLOCK_SIZE,
    BLOCK_SIZE + 1,
    2 * BLOCK_SIZE,
    3 * BLOCK_SIZE + 12_345,
  ];
  // Pieces that end exactly on, just before and just after block boundaries, and odd ones.
  const pieceSizes = [BLOCK_SIZE, 64 * 1024, 1_000_003, BLOCK_SIZE + 1, 8 * BLOCK_SIZE];

  it.each(sizes)('matches a plain computation for %i bytes, whatever the pieces', (size) => {
    const bytes = randomBytes(size);
    const want = reference(bytes);
    for (const piece of pieceSizes) {
      const hasher = new DigestHasher();
      for (let at = 0; at < size; at += piece) hasher.update(bytes.subarray(at, at + piece));
      expect(hasher.size).toBe(size);
      const got = hasher.digests();
      expect({ ...got, blocks: { ...got.blocks, hashes: got.blocks.hashes.toString('hex') } }).toEqual({
        ...want,
        blocks: { ...want.blocks, hashes: want.blocks.hashes.toString('hex') },
      });
    }
  });

  it.each(sizes)('takes given block digests of pieces on block boundaries for %i bytes', (size) => {
    const bytes = randomBytes(size);
    const want = reference(bytes);
    // Whole-MiB pieces (an upload's chunks) with their digests, or odd pieces with them where
    // they start on a boundary; the hasher must hash whatever the given digests do not cover.
    for (const piece of [BLOCK_SIZE, 3 * BLOCK_SIZE, 1_000_003, 2 * BLOCK_SIZE + 7]) {
      const hasher = new DigestHasher();
      for (let at = 0; at < size; at += piece) {
        const part = bytes.subarray(at, at + piece);
        hasher.update(part, chunkBlocks(part));
      }
      const got = hasher.digests();
      expect(got.sha1).toBe(want.sha1);
      expect(got.root).toBe(want.root);
      expect(got.blocks.hashes.toString('hex')).toBe(want.blocks.hashes.toString('hex'));
    }
  });

  it('uses the given block digests as they are (they were computed where the bytes arrived)', () => {
    const bytes = randomBytes(2 * BLOCK_SIZE);
    const given = Buffer.alloc(64, 7);
    const hasher = new DigestHasher();
    hasher.update(bytes, given);
    expect(hasher.digests().blocks.hashes.equals(given)).toBe(true);
  });

  it('tells one changed byte in any block', () => {
    const bytes = randomBytes(2 * BLOCK_SIZE + 10);
    const hash = (b: Buffer) => {
      const h = new DigestHasher();
      h.update(b);
      return h.digests().blocks.hashes;
    };
    const base = hash(bytes);
    for (const at of [0, BLOCK_SIZE - 1, BLOCK_SIZE, 2 * BLOCK_SIZE + 9]) {
      const changed = Buffer.from(bytes);
      changed[at] = (changed[at] ?? 0) ^ 1;
      const table = hash(changed);
      const block = Math.floor(at / BLOCK_SIZE);
      for (let i = 0; i < 3; i++) {
        const same = table.subarray(i * 32, i * 32 + 32).equals(base.subarray(i * 32, i * 32 + 32));
        expect(same).toBe(i !== block);
      }
    }
  });
});
