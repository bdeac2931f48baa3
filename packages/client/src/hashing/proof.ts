import type { Challenge } from '@dfs/shared';
import { textEncoder } from '../util/bytes.ts';
import { createHasher } from './create.ts';
import { readExact } from './hash-file.ts';
import type { FileSource, Hasher } from './types.ts';
import { HASH_PIECE_SIZE } from './types.ts';

/**
 * The answer to an instant-upload challenge (API.md): SHA-1 of the UTF-8 `nonce` followed by
 * `rangeBytes`, the file's bytes `[offset, offset + length)`.
 */
export async function proofSha1(nonce: string, rangeBytes: Uint8Array, hasher?: Hasher): Promise<string> {
  const h = await (hasher ?? (await createHasher())).createSha1();
  h.update(textEncoder.encode(nonce));
  h.update(rangeBytes);
  return h.digest();
}

/** Computes the proof for `challenge` by reading the range from `source` in bounded pieces. */
export async function proveChallenge(
  source: FileSource,
  challenge: Pick<Challenge, 'nonce' | 'offset' | 'length'>,
  hasher?: Hasher,
  signal?: AbortSignal,
): Promise<string> {
  const { nonce, offset, length } = challenge;
  if (offset < 0 || length < 0 || offset + length > source.size) {
    throw new RangeError(
      `challenge range [${offset}, ${offset + length}) is outside the file (${source.size} bytes)`,
    );
  }
  const h = await (hasher ?? (await createHasher())).createSha1();
  h.update(textEncoder.encode(nonce));
  for (let pos = offset; pos < offset + length; pos += HASH_PIECE_SIZE) {
    signal?.throwIfAborted();
    h.update(await readExact(source, pos, Math.min(offset + length, pos + HASH_PIECE_SIZE)));
  }
  return h.digest();
}
