/** Which implementation computes the digests. */
export type HashBackend = 'wasm' | 'js' | 'node';

/** A running digest: feed bytes in order, then take the lowercase hex digest once. */
export interface IncrementalDigest {
  update(data: Uint8Array): void;
  /** Lowercase hex; the object is finished afterwards. */
  digest(): string;
}

/**
 * SHA-1 and MD5 behind one interface, so every backend (hash-wasm, pure JS, node:crypto)
 * is interchangeable and must give identical digests.
 */
export interface Hasher {
  readonly backend: HashBackend;
  /** A fresh incremental SHA-1 (one per file). */
  createSha1(): Promise<IncrementalDigest>;
  /** A fresh incremental MD5. */
  createMd5(): Promise<IncrementalDigest>;
  /** One-shot MD5 of bytes already in memory (a chunk), lowercase hex. Synchronous. */
  md5(data: Uint8Array): string;
  /** One-shot SHA-1, lowercase hex. Synchronous. */
  sha1(data: Uint8Array): string;
}

/** The result of hashing a whole file in one read. */
export interface FileDigest {
  /** SHA-1 of the whole content, lowercase hex. */
  sha1: string;
  /** The piece size the MD5s below were taken over. */
  pieceSize: number;
  /**
   * MD5 (lowercase hex) of each `pieceSize` piece, in order; the last piece may be shorter. Empty
   * when the caller asked for none (`HashFileOptions.pieceMd5s: false`).
   */
  pieceMd5s: string[];
}

export interface HashFileOptions {
  /** Size of the pieces read (and MD5-hashed); default `HASH_PIECE_SIZE` (8 MiB). */
  pieceSize?: number;
  /** Called with the total bytes hashed so far. */
  onProgress?: (bytesHashed: number) => void;
  signal?: AbortSignal;
  /**
   * Whether piece MD5s are wanted (default true). A hint: a hasher that gets them for free (the
   * worker pool runs them beside the SHA-1) may still return them; `pieceMd5s` is empty otherwise.
   */
  pieceMd5s?: boolean;
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
   * The browser's own Blob behind this source, when there is one: a one-request upload sends it
   * as it is instead of a copy of bytes already read (each new Blob costs the page an IPC).
   */
  readonly blob?: Blob;
}

/** Hashes a whole file reading each byte once: SHA-1 of everything + MD5 of each piece. Pluggable. */
export type HashFileFn = (source: FileSource, options?: HashFileOptions) => Promise<FileDigest>;

/** The piece size of the hashing pass: 8 MiB, the smallest chunk size the server hands out. */
export const HASH_PIECE_SIZE = 8 * 1024 * 1024;
