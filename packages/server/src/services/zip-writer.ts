import { PassThrough, type Readable } from 'node:stream';
import yazl from 'yazl';

export interface ZipEntry {
  /** Path inside the archive, `/`-separated; a folder's ends without a slash. */
  path: string;
  kind: 'file' | 'folder';
  size: number;
  mtime: Date;
}

/**
 * Streams a ZIP of `entries` as it reads them: each file's bytes are opened only when the writer
 * reaches it (`open`), so an archive of thousands of files holds one open read at a time, and
 * nothing is built in memory or on disk. Entries are stored, not deflated: on a small server the
 * CPU would be the bottleneck, and photos, videos and archives do not shrink. yazl switches to
 * ZIP64 by itself past 4 GiB or 65,535 entries.
 *
 * `size` is the archive's exact length (every entry's size is known up front), for a
 * Content-Length that lets the browser show progress and time left.
 */
export function writeZip(
  entries: ZipEntry[],
  open: (entry: ZipEntry) => Promise<Readable>,
): { stream: Readable; size: number | null } {
  const zip = new yazl.ZipFile();
  const out = new PassThrough();
  zip.outputStream.on('error', (err) => out.destroy(err));
  zip.on('error', (err: Error) => out.destroy(err));
  zip.outputStream.pipe(out);
  // The archive is abandoned (the client went away): stop reading the nodes.
  out.on('close', () => {
    if (!out.writableFinished) (zip.outputStream as Readable).destroy();
  });
  for (const entry of entries) {
    if (entry.kind === 'folder') {
      zip.addEmptyDirectory(entry.path, { mtime: entry.mtime });
      continue;
    }
    zip.addReadStreamLazy(entry.path, { mtime: entry.mtime, compress: false, size: entry.size }, (cb) => {
      open(entry).then(
        (stream) => cb(null, stream),
        (err: unknown) => cb(err, new PassThrough()),
      );
    });
  }
  let size: number | null = null;
  // The typings declare the callback without its argument: yazl passes the total (-1: unknown).
  const onTotal = (total: number) => {
    size = total >= 0 ? total : null;
  };
  zip.end(undefined, onTotal as unknown as () => void);
  return { stream: out, size };
}
