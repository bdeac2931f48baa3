import { createMD5, createSHA1, type IHasher } from 'hash-wasm';
import type { Hasher, IncrementalDigest } from './types.ts';

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
  const [md5Once, sha1Once] = await Promise.all([createMD5(), createSHA1()]);
  return {
    backend: 'wasm',
    createSha1: async () => wrap(await createSHA1()),
    createMd5: async () => wrap(await createMD5()),
    md5: (data) => md5Once.init().update(data).digest('hex'),
    sha1: (data) => sha1Once.init().update(data).digest('hex'),
  };
}
