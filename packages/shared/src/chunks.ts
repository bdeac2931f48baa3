/**
 * The chunk plan both ends of the upload protocol follow: chunk `i` of a file is the bytes
 * `[i × chunkSize, min(size, (i + 1) × chunkSize))`, so every chunk but the last has exactly
 * `chunkSize` bytes and an empty file has no chunk at all.
 */

export interface ChunkRange {
  index: number;
  start: number;
  end: number;
}

export function chunkCountFor(size: number, chunkSize: number): number {
  if (!(chunkSize > 0)) throw new RangeError('chunkSize must be positive');
  return Math.ceil(size / chunkSize);
}

export function chunkRange(size: number, chunkSize: number, index: number): ChunkRange {
  const start = index * chunkSize;
  return { index, start, end: Math.min(size, start + chunkSize) };
}
