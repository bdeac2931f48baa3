import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE } from '../../src/services/block-hashes.ts';
import { DigestHasher } from '../../src/services/digests.ts';
import { blockTableOf } from '../support/bytes.ts';

/** The digests computed the plain way: each hash over the whole bytes, each block on its own. */
function reference(bytes: Buffer) {
  return {
    sha1: createHash('sha1').update(bytes).digest('hex'),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    size: bytes.length,
    blocks: { blockSize: BLOCK_SIZE, hashes: blockTableOf(bytes, BLOCK_SIZE) },
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
