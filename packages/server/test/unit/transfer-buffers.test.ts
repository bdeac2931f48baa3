import { describe, expect, it } from 'vitest';
import { TransferBuffers } from '../../src/services/hashing/transfer-buffers.ts';

describe('TransferBuffers', () => {
  it('reuses a given-back buffer for any size of its power-of-two class', () => {
    const pool = new TransferBuffers();
    const a = pool.take(100_000);
    expect(a.byteLength).toBe(128 * 1024);
    pool.give(a);
    expect(pool.pooledBytes()).toBe(128 * 1024);
    expect(pool.take(70_000)).toBe(a);
    expect(pool.pooledBytes()).toBe(0);
    // Another class gets its own buffer.
    expect(pool.take(200_000)).not.toBe(a);
    expect(pool.take(1).byteLength).toBe(64 * 1024);
  });

  it('keeps at most its limit and ignores buffers moved away or of no class', () => {
    const pool = new TransferBuffers(256 * 1024);
    const buffers = [pool.take(128 * 1024), pool.take(128 * 1024), pool.take(128 * 1024)];
    for (const b of buffers) pool.give(b);
    expect(pool.pooledBytes()).toBe(256 * 1024);
    const moved = new TransferBuffers().take(64 * 1024);
    structuredClone(moved, { transfer: [moved] });
    expect(moved.byteLength).toBe(0);
    pool.give(moved);
    pool.give(new ArrayBuffer(100_000));
    expect(pool.pooledBytes()).toBe(256 * 1024);
  });
});
