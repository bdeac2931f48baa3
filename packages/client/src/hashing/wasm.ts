import { createCRC32, createSHA1, type IHasher } from 'hash-wasm';
import type { Hasher, IncrementalDigest } from './types.ts';

/** The CRC-32C (Castagnoli) polynomial, reflected, as hash-wasm takes it. */
const CASTAGNOLI = 0x82f63b78;

function wrap(h: IHasher): IncrementalDigest {
  return {
    update: (data) => {
      h.update(data);
    },
    digest: () => h.digest('hex'),
  };
}

/**
 * hash-wasm backend (fast path). One-shot digests reuse a single instance per algorithm;
 * that is safe because `init().update().digest()` runs synchronously.
 * Rejects where WebAssembly is missing or forbidden (CSP without 'wasm-unsafe-eval').
 */
export async function createWasmHasher(): Promise<Hasher> {
  const [crcOnce, sha1Once] = await Promise.all([createCRC32(CASTAGNOLI), createSHA1()]);
  return {
    backend: 'wasm',
    createSha1: async () => wrap(await createSHA1()),
    sha1: (data) => sha1Once.init().update(data).digest('hex'),
    // The digest is the CRC's four bytes, big-endian.
    crc32c: (data) => {
      const d = crcOnce.init().update(data).digest('binary');
      return ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) >>> 0;
    },
  };
}
