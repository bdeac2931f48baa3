/** Which implementation computes the digests. */
export type HashBackend = 'wasm' | 'js' | 'node';

/** A running digest: feed bytes in order, then take the lowercase hex digest once. */
export interface IncrementalDigest {
  update(data: Uint8Array): void;
  /** Lowercase hex; the object is finished afterwards. */
  digest(): string;
}

/**
 * The client's hash budget behind one interface: the SHA-1 that names the content (instant
 * uploads, proofs) and the CRC-32C that guards each chunk on the wire. Every backend (hash-wasm,
 * pure JS, node:crypto + @node-rs/crc32) is interchangeable and must give identical results.
 */
export interface Hasher {
  readonly backend: HashBackend;
  /** A fresh incremental SHA-1 (one per file). */
  createSha1(): Promise<IncrementalDigest>;
  /** One-shot SHA-1, lowercase hex. Synchronous. */
  sha1(data: Uint8Array): string;
  /** CRC-32C (Castagnoli) of bytes in memory (a chunk), as an unsigned 32-bit number. Synchronous. */
  crc32c(data: Uint8Array): number;
}

/** The result of hashing a whole file in one read. */
export interface FileDigest {
  /** SHA-1 of the whole content, lowercase hex. */
  sha1: string;
  /** The piece size the CRCs below were taken over. */
  pieceSize: number;
  /** CRC-32C (unsigned) of each `pieceSize` piece, in order; the last piece may be shorter. */
  pieceCrc32cs: number[];
}

export interface HashFileOptions {
  /** Size of the pieces read (and checksummed); default `HASH_PIECE_SIZE` (8 MiB). */
  pieceSize?: number;
  /** Called with the total bytes hashed so far. */
  onProgress?: (bytesHashed: number) => void;
  /**
   * Called with each piece's CRC-32C as soon as it is known, possibly before the SHA-1 has taken
   * that piece and not necessarily in order: a chunk the size of a piece can go at once.
   */
  onPiece?: (index: number, crc32c: number) => void;
  signal?: AbortSignal;
}

/** Anything that can be read at arbitrary offsets: a browser File/Blob, a Node file, bytes in memory. */
export interface FileSource {
  readonly name: string;
  readonly size: number;
  /** ms since the epoch (part of the resume fingerprint). */
  readonly lastModified?: number;
  /** MIME type when known. */
  readonly type?: string;
  /** The bytes `[start, end)`; `end` is clamped to `size`. May return fewer bytes only if the file shrank. */
  slice(start: number, end: number): Promise<Uint8Array>;
  /**
   * Like `slice`, into `into` (at least `end - start` bytes long), whose view it returns: a
   * reader that reuses its buffers (the CLI's hashing pass and chunk PUTs) leaves the garbage
   * collector nothing to do. Optional; without it `slice` is used.
   */
  readInto?(start: number, end: number, into: Uint8Array): Promise<Uint8Array>;
  /**
   * The browser's own Blob behind this source, when there is one: a one-request upload sends it
   * as it is instead of a copy of bytes already read (each new Blob costs the page an IPC).
   */
  readonly blob?: Blob;
}

/** Hashes a whole file reading each byte once: SHA-1 of everything + CRC-32C of each piece. Pluggable. */
export type HashFileFn = (source: FileSource, options?: HashFileOptions) => Promise<FileDigest>;

/** The piece size of the hashing pass: 8 MiB, the smallest chunk size the server hands out. */
export const HASH_PIECE_SIZE = 8 * 1024 * 1024;
