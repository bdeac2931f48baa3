import { createHasher } from './create.ts';
import type { FileDigest, FileSource, Hasher, HashFileFn, HashFileOptions } from './types.ts';
import { HASH_PIECE_SIZE } from './types.ts';

export function pieceCount(size: number, pieceSize: number): number {
  return Math.ceil(size / pieceSize);
}

/**
 * Reads `[start, end)` (into `into` when given and the source can) and fails when the source
 * returns a different length (the file changed).
 */
export async function readExact(
  source: FileSource,
  start: number,
  end: number,
  into?: Uint8Array,
): Promise<Uint8Array> {
  const bytes =
    into && source.readInto && into.byteLength >= end - start
      ? await source.readInto(start, end, into)
      : await source.slice(start, end);
  if (bytes.byteLength !== end - start) {
    throw new Error(
      `${source.name}: read ${bytes.byteLength} bytes at ${start}, expected ${end - start} (the file changed while reading)`,
    );
  }
  return bytes;
}

/**
 * Hashes `source` in one sequential pass on the current thread: the SHA-1 of the whole file and
 * the CRC-32C of every `pieceSize` piece. The next piece is read while the current one is hashed,
 * so at most two pieces are in memory — two buffers, taken in turn, when the source reads into
 * buffers (the hashers are done with a piece before its buffer is read into again).
 */
export async function hashSource(
  source: FileSource,
  hasher: Hasher,
  options: HashFileOptions = {},
): Promise<FileDigest> {
  const pieceSize = options.pieceSize ?? HASH_PIECE_SIZE;
  const { signal, onProgress, onPiece } = options;
  signal?.throwIfAborted();
  const sha1 = await hasher.createSha1();
  const count = pieceCount(source.size, pieceSize);
  const crcs: number[] = [];
  const buffers = source.readInto && count > 1 ? [new Uint8Array(pieceSize), new Uint8Array(pieceSize)] : [];
  const read = (i: number) => {
    const start = i * pieceSize;
    const p = readExact(source, start, Math.min(source.size, start + pieceSize), buffers[i % 2]);
    p.catch(() => {}); // handled when awaited; avoids an unhandled rejection if we stop first
    return p;
  };
  let next = count > 0 ? read(0) : null;
  let done = 0;
  for (let i = 0; i < count; i++) {
    const bytes = await next!;
    signal?.throwIfAborted();
    next = i + 1 < count ? read(i + 1) : null;
    const crc = hasher.crc32c(bytes);
    crcs.push(crc);
    onPiece?.(i, crc);
    sha1.update(bytes);
    done += bytes.byteLength;
    onProgress?.(done);
  }
  return { sha1: sha1.digest(), pieceSize, pieceCrc32cs: crcs };
}

/** A `HashFileFn` over a given hasher (or the best available one). */
export function hashFileWith(hasher?: Hasher | Promise<Hasher>): HashFileFn {
  return async (source, options) => hashSource(source, await (hasher ?? createHasher()), options);
}

/** The default `HashFileFn`: hash-wasm on the calling thread (JS fallback without WebAssembly). */
export const hashFile: HashFileFn = hashFileWith();
