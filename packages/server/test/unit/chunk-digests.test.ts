import { createHash, randomBytes } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { afterAll, describe, expect, it } from 'vitest';
import { BLOCK_SIZE, ONE_BLOCK_MAX } from '../../src/services/hashing/blocks.ts';
import type { ChunkChecksum } from '../../src/services/hashing/chunk.ts';
import { digestsOf } from '../../src/services/hashing/content.ts';
import { ChunkDigests, CONTENT_ON_THREAD_MIN } from '../../src/services/hashing/pool.ts';
import { blockTableOf } from '../support/bytes.ts';

const CHUNK = 2 * BLOCK_SIZE + 4096;
/** A CRC-32C the client would send: right for even chunks, off by one for odd ones. */
const sent = (data: Buffer, i: number): ChunkChecksum => ({
  algorithm: 'crc32c',
  value: (crc32c(data) + (i % 2)) >>> 0,
});
const plain = (data: Buffer, checksumOk: boolean | null) => {
  const blocks = blockTableOf(data, BLOCK_SIZE);
  return {
    checksumOk,
    identity:
      data.length <= BLOCK_SIZE
        ? createHash('sha256').update(data).digest('hex')
        : createHash('sha256').update(blocks).digest('hex'),
    blocks,
  };
};

/** What a content held whole should get: DigestHasher's digests, 1 MiB blocks at any size. */
const heldDigestsOf = (content: Buffer) => digestsOf(content);

describe('ChunkDigests', () => {
  const threaded = new ChunkDigests(CHUNK, 2);
  const inline = new ChunkDigests(CHUNK, 0);
  afterAll(async () => {
    await threaded.close();
    await inline.close();
  });

  it('checks the CRC-32C and gives the block SHA-256s and identity on threads and inline, many chunks at once', async () => {
    const chunks = [CHUNK, CHUNK, 1, BLOCK_SIZE, BLOCK_SIZE + 1, CHUNK - 1, CHUNK].map((n) => randomBytes(n));
    for (const digests of [threaded, inline]) {
      const got = await Promise.all(chunks.map((c, i) => digests.of(c, sent(c, i))));
      expect(got).toEqual(chunks.map((c, i) => plain(c, i % 2 === 0)));
      const md5 = await digests.of(chunks[0] as Buffer, {
        algorithm: 'md5',
        hex: createHash('md5')
          .update(chunks[0] as Buffer)
          .digest('hex'),
      });
      expect(md5.checksumOk).toBe(true);
      expect((await digests.of(chunks[1] as Buffer)).checksumOk).toBeNull();
    }
  });

  it('leaves the caller its bytes and reuses the copies it sends (no garbage per chunk)', async () => {
    const data = randomBytes(CHUNK);
    const before = Buffer.from(data);
    for (let i = 0; i < 5; i++) expect(await threaded.of(data, sent(data, 0))).toEqual(plain(before, true));
    expect(data.equals(before)).toBe(true);
    // One chunk at a time: the same copy travels back and forth.
    expect(threaded.spareCount()).toBeGreaterThanOrEqual(1);
    expect(threaded.spareCount()).toBeLessThanOrEqual(4);
  });

  it('moves a chunk the caller owns to the thread and back, copies one that views a larger buffer', async () => {
    const spares = threaded.spareCount();
    const owned = Buffer.allocUnsafeSlow(CHUNK);
    randomBytes(CHUNK).copy(owned);
    const before = Buffer.from(owned);
    const moved = await threaded.ofOwned(owned, sent(owned, 0));
    expect({ ...moved, bytes: undefined }).toEqual({ ...plain(before, true), bytes: undefined });
    expect(moved.bytes.equals(before)).toBe(true);
    // The same memory came back, not a copy: the buffer passed in is detached.
    expect(owned.buffer.byteLength).toBe(0);
    expect(threaded.spareCount()).toBe(spares);

    const larger = randomBytes(CHUNK + 10);
    const view = larger.subarray(10);
    const copied = await threaded.ofOwned(view, sent(view, 1));
    expect(copied.checksumOk).toBe(false);
    expect(copied.identity).toBe(plain(view, false).identity);
    expect(copied.bytes).toBe(view);
    expect(larger.length).toBe(CHUNK + 10);

    const alone = await inline.ofOwned(before);
    expect(alone.bytes).toBe(before);
    expect(alone.identity).toBe(plain(before, null).identity);
  });

  it('gives a whole content the digests DigestHasher gives it (1 MiB blocks at any size), on threads and inline', async () => {
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
