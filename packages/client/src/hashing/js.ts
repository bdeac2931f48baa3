import { sha1 as nobleSha1 } from '@noble/hashes/legacy.js';
import CRC32C from 'crc-32/crc32c.js';
import { bytesToHex } from '../util/bytes.ts';
import type { Hasher, IncrementalDigest } from './types.ts';

/** Pure-JS backend (no WebAssembly): @noble/hashes SHA-1 (incremental, audited) + SheetJS CRC-32C. */
export function createJsHasher(): Hasher {
  const newSha1 = (): IncrementalDigest => {
    const h = nobleSha1.create();
    return {
      update: (data) => {
        h.update(data);
      },
      digest: () => bytesToHex(h.digest()),
    };
  };
  return {
    backend: 'js',
    createSha1: async () => newSha1(),
    sha1: (data) => bytesToHex(nobleSha1(data)),
    // SheetJS answers a signed 32-bit integer.
    crc32c: (data) => CRC32C.buf(data) >>> 0,
  };
}
