import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { FileSource } from '../hashing/types.ts';

/**
 * A `FileSource` over a file on disk, read with positioned reads (never loaded whole). Each
 * read opens, reads and closes, so nothing leaks when an upload is dropped mid-way.
 */
export async function fileSourceFromPath(path: string, name = basename(path)): Promise<FileSource> {
  const st = await stat(path);
  if (!st.isFile()) throw new Error(`${path} is not a regular file`);
  /** Reads `[start, min(end, size))` into the start of `buf`; a view of what was read. */
  const readInto = async (start: number, end: number, buf: Uint8Array): Promise<Uint8Array> => {
    const length = Math.max(0, Math.min(end, st.size) - start);
    if (length === 0) return buf.subarray(0, 0);
    const fh = await open(path, 'r');
    try {
      let off = 0;
      while (off < length) {
        const { bytesRead } = await fh.read(buf, off, length - off, start + off);
        if (bytesRead === 0) break; // the file shrank: readExact reports it
        off += bytesRead;
      }
      return buf.subarray(0, off);
    } finally {
      await fh.close();
    }
  };
  return {
    name,
    size: st.size,
    lastModified: Math.trunc(st.mtimeMs),
    // Not zero-filled: every byte is read over before anyone sees it (a short read is cut off).
    slice: (start, end) =>
      readInto(start, end, Buffer.allocUnsafe(Math.max(0, Math.min(end, st.size) - start))),
    readInto,
  };
}
