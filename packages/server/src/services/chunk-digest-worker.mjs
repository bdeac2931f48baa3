// The work of a chunk-digest thread (see chunk-digests.ts). Plain JavaScript so that the same
// file runs under the bundle, tsx and the test runner; the build copies it next to dist/main.js.
// The block digests are chunk-identity.ts's `chunkBlocks` (a unit test holds the two equal).
import { createHash } from 'node:crypto';
import { Piscina } from 'piscina';

const BLOCK_SIZE = 1024 * 1024;
const BLOCK_HASH_BYTES = 32;

/**
 * Hashes one chunk and hands its buffer back (moved, not copied) for the next chunk to use.
 * @param {{ data: Uint8Array, md5: boolean }} task
 */
export default function digest({ data, md5 }) {
  const blocks = new Uint8Array(Math.ceil(data.length / BLOCK_SIZE) * BLOCK_HASH_BYTES);
  for (let at = 0, i = 0; at < data.length; at += BLOCK_SIZE, i++) {
    blocks.set(
      createHash('sha256')
        .update(data.subarray(at, at + BLOCK_SIZE))
        .digest(),
      i * BLOCK_HASH_BYTES,
    );
  }
  const value = {
    md5: md5 ? createHash('md5').update(data).digest('hex') : '',
    blocks,
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
