import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE } from '../../src/services/hashing/blocks.ts';
import { chunkBlocks, chunkIdentity, matchChunk } from '../../src/services/hashing/chunk.ts';
import { blockTableOf } from '../support/bytes.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('chunk identity', () => {
  it('is the plain SHA-256 for a chunk of one block, and over the block digests beyond', () => {
    const small = randomBytes(BLOCK_SIZE);
    expect(chunkIdentity(chunkBlocks(small))).toBe(sha256(small));
    const big = randomBytes(3 * BLOCK_SIZE + 5);
    expect(chunkBlocks(big).equals(blockTableOf(big, BLOCK_SIZE))).toBe(true);
    expect(chunkIdentity(chunkBlocks(big))).toBe(sha256(blockTableOf(big, BLOCK_SIZE)));
    expect(chunkIdentity(chunkBlocks(big))).not.toBe(sha256(big));
  });

  it('matches the same bytes under either identity, and nothing else', () => {
    const data = randomBytes(2 * BLOCK_SIZE + 1);
    const blocks = chunkBlocks(data);
    expect(matchChunk(data, chunkIdentity(blocks))?.equals(blocks)).toBe(true);
    // Acknowledged before identities were taken over blocks.
    expect(matchChunk(data, sha256(data))?.equals(blocks)).toBe(true);
    for (const at of [0, BLOCK_SIZE, 2 * BLOCK_SIZE]) {
      const changed = Buffer.from(data);
      changed[at] = (changed[at] ?? 0) ^ 1;
      expect(matchChunk(changed, chunkIdentity(blocks))).toBeNull();
      expect(matchChunk(changed, sha256(data))).toBeNull();
    }
  });
});
