// The work of a digest thread (see chunk-digests.ts). Plain JavaScript so that the same file runs
// under the bundle, tsx and the test runner; the build copies it next to dist/main.js.
// Its results are chunk-identity.ts's `chunkBlocks` and digests.ts's `digestsOf`; a unit test
// holds them equal.
import { createHash } from 'node:crypto';
import { Piscina } from 'piscina';

const BLOCK_SIZE = 1024 * 1024;
const BLOCK_HASH_BYTES = 32;

/**
 * @param {{ kind?: 'chunk', data: Uint8Array, md5: boolean } | { kind: 'content', data: Uint8Array, oneBlockMax: number }} task
 */
export default function digest(task) {
  return task.kind === 'content'
    ? contentDigests(task.data, task.oneBlockMax)
    : chunkDigests(task.data, task.md5);
}

/** One upload chunk: its MD5 (when asked) and the SHA-256 of each of its blocks. */
function chunkDigests(data, md5) {
  const blocks = new Uint8Array(Math.ceil(data.length / BLOCK_SIZE) * BLOCK_HASH_BYTES);
  for (let at = 0, i = 0; at < data.length; at += BLOCK_SIZE, i++) {
    blocks.set(
      createHash('sha256')
        .update(data.subarray(at, at + BLOCK_SIZE))
        .digest(),
      i * BLOCK_HASH_BYTES,
    );
  }
  return handBack({ md5: md5 ? createHash('md5').update(data).digest('hex') : '', blocks, data });
}

/**
 * A whole content held in memory: SHA-1, SHA-256 and the block table. Up to `oneBlockMax` bytes
 * the table is one block, the whole-file SHA-256 (block-hashes.ts's oneBlockTable); above, 1 MiB
 * blocks, block 0's digest being the whole-file SHA-256 state after its bytes, as in DigestHasher.
 */
function contentDigests(data, oneBlockMax) {
  const sha1 = createHash('sha1').update(data).digest('hex');
  if (data.length > 0 && data.length <= oneBlockMax) {
    const sha256 = createHash('sha256').update(data).digest();
    // Its own 32 bytes: a view into a shared pool would send the whole pool along.
    const blocks = new Uint8Array(sha256);
    return handBack({ sha1, sha256: sha256.toString('hex'), blockSize: oneBlockMax, blocks, data });
  }
  const sha256 = createHash('sha256');
  const count = Math.ceil(data.length / BLOCK_SIZE);
  const blocks = new Uint8Array(count * BLOCK_HASH_BYTES);
  sha256.update(data.subarray(0, BLOCK_SIZE));
  if (count > 0) blocks.set(sha256.copy().digest(), 0);
  for (let i = 1; i < count; i++) {
    const block = data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE);
    sha256.update(block);
    blocks.set(createHash('sha256').update(block).digest(), i * BLOCK_HASH_BYTES);
  }
  return handBack({ sha1, sha256: sha256.digest('hex'), blockSize: BLOCK_SIZE, blocks, data });
}

/** The result, with the bytes' buffer moved back (not copied) to the app's thread. */
function handBack(value) {
  return Piscina.move({
    get [Piscina.transferableSymbol]() {
      return [value.data.buffer];
    },
    get [Piscina.valueSymbol]() {
      return value;
    },
  });
}
