import { sha1 as nobleSha1 } from '@noble/hashes/legacy.js';
import SparkMD5 from 'spark-md5';
import { bytesToHex } from '../util/bytes.ts';
import type { Hasher, IncrementalDigest } from './types.ts';

/** Pure-JS backend (no WebAssembly): @noble/hashes SHA-1 (incremental, audited) + spark-md5. */
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
  const newMd5 = (): IncrementalDigest => {
    const h = new SparkMD5.ArrayBuffer();
    return {
      update: (data) => {
        // spark-md5 copies its argument (`new Uint8Array(arr)`), so a view is read correctly.
        h.append(data as unknown as ArrayBuffer);
      },
      digest: () => h.end(),
    };
  };
  return {
    backend: 'js',
    createSha1: async () => newSha1(),
    createMd5: async () => newMd5(),
    md5: (data) => SparkMD5.ArrayBuffer.hash(data as unknown as ArrayBuffer),
    sha1: (data) => bytesToHex(nobleSha1(data)),
  };
}
