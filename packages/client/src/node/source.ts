import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { FileSource } from '../hashing/types.ts';

/**
 * A `FileSource` over a file on disk, read with positioned reads (never loaded whole). Each
 * `slice` opens, reads and closes, so nothing leaks when an upload is dropped mid-way.
 */
export async function fileSourceFromPath(path: string, name = basename(path)): Promise<FileSource> {
  const st = await stat(path);
  if (!st.isFile()) throw new Error(`${path} is not a regular file`);
  return {
    name,
    size: st.size,
    lastModified: Math.trunc(st.mtimeMs),
    slice: async (start, end) => {
      const stop = Math.min(end, st.size);
      const length = Math.max(0, stop - start);
      // Not zero-filled: every byte is read over before anyone sees it (a short read is cut off).
      const buf = Buffer.allocUnsafe(length);
      if (length === 0) return buf;
      const fh = await open(path, 'r');
      try {
        let off = 0;
        while (off < length) {
          const { bytesRead } = await fh.read(buf, off, length - off, start + off);
          if (bytesRead === 0) break; // the file shrank: readExact reports it
          off += bytesRead;
        }
        return off === length ? buf : buf.subarray(0, off);
      } finally {
        await fh.close();
      }
    },
  };
}
