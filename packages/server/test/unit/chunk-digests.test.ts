import { createHash, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { BLOCK_SIZE, ONE_BLOCK_MAX } from '../../src/services/block-hashes.ts';
import { ChunkDigests, CONTENT_ON_THREAD_MIN } from '../../src/services/chunk-digests.ts';
import { digestsOf } from '../../src/services/digests.ts';
import { blockTableOf } from '../support/bytes.ts';

const CHUNK = 2 * BLOCK_SIZE + 4096;
const plain = (data: Buffer, withMd5: boolean) => {
  const blocks = blockTableOf(data, BLOCK_SIZE);
  return {
    md5: withMd5 ? createHash('md5').update(data).digest('hex') : '',
    identity:
      data.length <= BLOCK_SIZE
        ? createHash('sha256').update(data).digest('hex')
        : createHash('sha256').update(blocks).digest('hex'),
    blocks,
  };
};

/**
 * What a content held whole should get: DigestHasher's digests, with a table of one block (its
 * SHA-256, computed here independently) up to ONE_BLOCK_MAX bytes.
 */
const heldDigestsOf = (content: Buffer) => {
  const d = digestsOf(content);
  if (content.length === 0 || content.length > ONE_BLOCK_MAX) return d;
  return {
    ...d,
    blocks: { blockSize: ONE_BLOCK_MAX, hashes: createHash('sha256').update(content).digest() },
  };
};

describe('ChunkDigests', () => {
  const threaded = new ChunkDigests(CHUNK, 2);
  const inline = new ChunkDigests(CHUNK, 0);
  afterAll(async () => {
    await threaded.close();
    await inline.close();
  });

  it('gives the MD5, block SHA-256s and identity on threads and inline, many chunks at once', async () => {
    const chunks = [CHUNK, CHUNK, 1, BLOCK_SIZE, BLOCK_SIZE + 1, CHUNK - 1, CHUNK].map((n) => randomBytes(n));
    for (const digests of [threaded, inline]) {
      const got = await Promise.all(chunks.map((c, i) => digests.of(c, i % 2 === 0)));
      expect(got).toEqual(chunks.map((c, i) => plain(c, i % 2 === 0)));
    }
  });

  it('leaves the caller its bytes and reuses the copies it sends (no garbage per chunk)', async () => {
    const data = randomBytes(CHUNK);
    const before = Buffer.from(data);
    for (let i = 0; i < 5; i++) expect(await threaded.of(data, true)).toEqual(plain(before, true));
    expect(data.equals(before)).toBe(true);
    // One chunk at a time: the same copy travels back and forth.
    expect(threaded.spareCount()).toBeGreaterThanOrEqual(1);
    expect(threaded.spareCount()).toBeLessThanOrEqual(4);
  });

  it('gives a whole content the digests DigestHasher gives it (one block up to 4 MiB), on threads and inline', async () => {
    const sizes = [
      0,
      1,
      CONTENT_ON_THREAD_MIN - 1,
      CONTENT_ON_THREAD_MIN,
      BLOCK_SIZE - 1,
      BLOCK_SIZE,
      BLOCK_SIZE + 1,
    ];
    const contents = [...sizes, 3 * BLOCK_SIZE + 12_345, ONE_BLOCK_MAX, ONE_BLOCK_MAX + 1].map((n) =>
      randomBytes(n),
    );
    for (const digests of [threaded, inline]) {
      const got = await Promise.all(
        contents.map((c) => {
          // Uneven pieces, as they come off a socket.
          const pieces = [c.subarray(0, 1000), c.subarray(1000, 70_000), c.subarray(70_000)].filter(
            (p) => p.length,
          );
          return digests.content(pieces, c.length);
        }),
      );
      for (const [i, { digests: d, bytes }] of got.entries()) {
        const content = contents[i] as Buffer;
        expect(d).toEqual(heldDigestsOf(content));
        expect(Buffer.concat(bytes).equals(content)).toBe(true);
      }
    }
  });

  it('reuses the buffer a released content travelled in, and each content still hashes right', async () => {
    const digests = new ChunkDigests(CHUNK, 1);
    try {
      // All three share the 512 KiB class: the later ones travel in the earlier ones' buffer,
      // over bytes of the content before.
      for (const n of [500_000, 400_000, 300_000]) {
        const content = randomBytes(n);
        const held = await digests.content([content], n);
        expect(held.digests).toEqual(heldDigestsOf(content));
        expect(Buffer.concat(held.bytes).equals(content)).toBe(true);
        held.release();
      }
    } finally {
      await digests.close();
    }
  });
});
