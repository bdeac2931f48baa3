import { createHash } from 'node:crypto';
import { hashSource } from '../hashing/hash-file.ts';
import type { Hasher, HashFileFn, IncrementalDigest } from '../hashing/types.ts';

function digestOf(algorithm: 'sha1' | 'md5'): IncrementalDigest {
  const h = createHash(algorithm);
  return {
    update: (data) => {
      h.update(data);
    },
    digest: () => h.digest('hex'),
  };
}

/** node:crypto (OpenSSL) backend: several times faster than WebAssembly. */
export const nodeHasher: Hasher = {
  backend: 'node',
  createSha1: async () => digestOf('sha1'),
  createMd5: async () => digestOf('md5'),
  md5: (data) => createHash('md5').update(data).digest('hex'),
  sha1: (data) => createHash('sha1').update(data).digest('hex'),
};

/** `HashFileFn` with node:crypto: one sequential read, SHA-1 of the file + MD5 of each piece. */
export const nodeHashFile: HashFileFn = (source, options) => hashSource(source, nodeHasher, options);
