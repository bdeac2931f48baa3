// The work of a chunk-digest thread (see chunk-digests.ts). Plain JavaScript so that the same
// file runs under the bundle, tsx and the test runner; the build copies it next to dist/main.js.
import { createHash } from 'node:crypto';
import { Piscina } from 'piscina';

/**
 * Hashes one chunk and hands its buffer back (moved, not copied) for the next chunk to use.
 * @param {{ data: Uint8Array, md5: boolean }} task
 */
export default function digest({ data, md5 }) {
  const value = {
    md5: md5 ? createHash('md5').update(data).digest('hex') : '',
    sha256: createHash('sha256').update(data).digest('hex'),
    data,
  };
  return Piscina.move({
    get [Piscina.transferableSymbol]() {
      return [data.buffer];
    },
    get [Piscina.valueSymbol]() {
      return value;
    },
  });
}
