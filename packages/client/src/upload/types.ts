import type { FileEntry, OnConflict } from '@dfs/shared';
import type { UploadTransport } from '../api.ts';
import type { Hasher, HashFileFn } from '../hashing/types.ts';
import type { SmallFileBatcher } from './batcher.ts';
import type { FolderIndex } from './existing.ts';
import type { FileFromBytes } from './held-bytes.ts';
import type { Limiter } from './limiter.ts';
import type { ResumeStore } from './resume.ts';
import type { Sleep } from './retry.ts';
import type { UploadState } from './state.ts';

/**
 * How a file travels:
 * - `small`: one `POST /api/files` with the SHA-1 (hashed in memory first);
 * - `chunked`: hash, then `POST /api/uploads` with the SHA-1 (instant or a session), chunks, complete;
 * - `speculative`: a session without the SHA-1 at once, chunks sent while hashing, then an
 *   instant-upload check and `complete {sha1}`.
 */
export type UploadRoute = 'small' | 'chunked' | 'speculative';

/** Files at or below this go through `POST /api/files` (in batches when the queue can). */
export const DEFAULT_SMALL_FILE_LIMIT = 4 * 1024 * 1024;
/** Files at or above this are sent while they are being hashed. */
export const DEFAULT_SPECULATIVE_THRESHOLD = 256 * 1024 * 1024;
/** How long `complete` may keep answering `upload_busy` (the server verifying) before giving up. */
export const DEFAULT_VERIFY_TIMEOUT_MS = 30 * 60_000;

export interface UploadOptions {
  /** The API (a `DfsApi`) or any object with the upload methods (`uploadSimple` optional). */
  transport: UploadTransport;
  /** Target folder; root when absent or null. */
  parentId?: string | null;
  /** Name on the server (default: `source.name`). */
  name?: string;
  /** A known SHA-1 of the content: skips hashing (chunk CRCs are then computed while sending). */
  sha1?: string;
  /**
   * The file's modification time (epoch ms) for the server to keep as the entry's `mtime`
   * (default: `source.lastModified`; a time the server would refuse is not sent).
   */
  mtime?: number;
  /** Hashes the file (default: hash-wasm on this thread). The web app passes `WorkerHashPool#hashFile`. */
  hashFile?: HashFileFn;
  /** Hasher for chunk CRCs computed at send time and for challenge proofs (default: `createHasher()`). */
  hasher?: Hasher | Promise<Hasher>;
  /**
   * The CRC-32C of a chunk's Blob without reading it on this thread (the web app passes
   * `WorkerHashPool#crc32cOfBlob`); used for a chunk whose CRC the hashing pass did not take.
   */
  crc32cOfBlob?: (blob: Blob) => Promise<number>;
  /**
   * SHA-1 of a small file already in memory (default: `hasher` when it is node:crypto, else
   * WebCrypto where the page has it, else `hasher`).
   */
  sha1OfBytes?: (bytes: Uint8Array) => Promise<string>;
  /**
   * SHA-1 of a small file's Blob without reading it on this thread (the web app passes
   * `WorkerHashPool#sha1OfBlob`); used when the source has a Blob.
   */
  sha1OfBlob?: (blob: Blob) => Promise<string>;
  /**
   * An instant-upload proof, SHA-1(UTF-8 `nonce` ‖ the bytes of `range`, a slice of the file's
   * Blob), without reading it on this thread (the web app passes `WorkerHashPool#proofOfBlob`).
   */
  proofOfBlob?: (nonce: string, range: Blob) => Promise<string>;
  /**
   * Makes the File a small file's bytes are sent as, once read and hashed (default: a standard
   * File). Node's File copies the bytes into its Blob store; the CLI passes `nodeFileFromBytes`.
   */
  fileFromBytes?: FileFromBytes;
  /** Chunk requests in flight for this file (and chunks in memory); default 4. */
  parallelism?: number;
  /** Waits between attempts; default `[0, 1000, 3000, 5000]`. */
  retryDelays?: readonly number[];
  /** Remembers sha1 + uploadId by fingerprint so a reload resumes without re-hashing. */
  resumeStore?: ResumeStore;
  /**
   * Skip the upload when the target folder already holds a file of this name with the same size
   * and SHA-1 (looked up in this index; the file is hashed first when one of that name and size
   * is there). The upload ends `done` with `skipped` and that file, sending nothing. Without
   * it, such a file is stored again as `name (1)` (the server's rule for uploads).
   */
  skipIdentical?: FolderIndex;
  /**
   * What the server does when the name is taken in the folder by the time the upload starts:
   * `rename` (the server's default: ` (1)`…), `replace` (the file there gets this content, its
   * old one kept as a version) or `fail` (`409 name_conflict`). `onNameTaken` can set it per file.
   */
  onConflict?: OnConflict;
  /**
   * Asked, before any byte is sent, when the `skipIdentical` index shows a file of this name
   * with other content in the target folder: the answer is this upload's `onConflict`, or
   * `skip` (the upload ends `done` with `skipped` and that file, sending nothing). Asked once
   * per upload; a retry keeps the answer. Without it, `onConflict` (or the server's default) rules.
   */
  onNameTaken?: NameTakenHandler;
  /** Shared chunk-request slots (UploadQueue). */
  requestLimiter?: Limiter;
  /** Shared hashing slots (UploadQueue). */
  hashLimiter?: Limiter;
  /** Gathers small files into `POST /api/files/batch` requests (UploadQueue). */
  batcher?: SmallFileBatcher;
  /**
   * Files up to this size take the one-request path when the transport has `uploadSimple`;
   * default 4 MiB. 0: only empty files; -1: never.
   */
  smallFileLimit?: number;
  /** Files from this size on are sent while hashing; default 256 MiB. `Infinity` turns it off. */
  speculativeThreshold?: number;
  /** Bound on `complete` answering `upload_busy` while the server verifies; default 30 min. */
  verifyTimeoutMs?: number;
  /** Moving-average window of `speed`; default 5000 ms. */
  speedWindowMs?: number;
  /** Minimum ms between `progress` events (state changes and finished chunks always emit); default 100. */
  progressIntervalMs?: number;
  /** Injectable clock and sleep (tests). */
  now?: () => number;
  sleep?: Sleep;
  id?: string;
}

/** A name the target folder already holds, as `onNameTaken` is asked about it. */
export interface NameTaken {
  /** The upload's id. */
  id: string;
  name: string;
  parentId: string | null;
  /** The upload's size. */
  size: number;
  /** The file of that name the folder holds. */
  existing: FileEntry;
  /** Aborts when the upload is paused or canceled while the question is open. */
  signal: AbortSignal;
}

export type NameTakenChoice = 'replace' | 'rename' | 'skip';
export type NameTakenHandler = (taken: NameTaken) => Promise<NameTakenChoice>;

export interface UploadErrorInfo {
  name: string;
  message: string;
  code?: string;
  status?: number;
}

/** A plain, structured-clonable picture of an upload (post it from a worker, render it in Vue). */
export interface UploadSnapshot {
  id: string;
  name: string;
  size: number;
  parentId: string | null;
  state: UploadState;
  /** How the file travels (decided when it starts; a guess before). */
  route: UploadRoute;
  /** Bytes hashed (= size once the SHA-1 is known). */
  bytesHashed: number;
  /** A hash is running — for a speculative upload, also while `state` is `uploading`. */
  hashing: boolean;
  /** ms spent hashing in this run; null when the SHA-1 came from elsewhere (resume store, option). */
  hashMs: number | null;
  /** Bytes the server holds for this upload: confirmed chunks + in-flight progress (= size when done). */
  bytesUploaded: number;
  /** Bytes this client actually transferred (0 for an instant upload or for chunks resumed from earlier). */
  sentBytes: number;
  /** Bytes/s of the current phase (hashing or transferring), moving average. */
  speed: number;
  /** Bytes/s of the hash, moving average (also while it runs beside the transfer). */
  hashSpeed: number;
  /** Seconds left in the current phase at `speed` (both phases for a speculative upload), null when unknown. */
  eta: number | null;
  /** `complete` answered `upload_busy`: the server is still verifying the bytes. */
  verifying: boolean;
  /** Finished by proof of ownership, without sending (all the) bytes. */
  instant: boolean;
  /** Not sent at all: the folder already held this name with the same content (`skipIdentical`), or `onNameTaken` answered `skip`. */
  skipped: boolean;
  sha1: string | null;
  uploadId: string | null;
  chunkSize: number | null;
  chunkCount: number | null;
  chunksDone: number;
  /** Failed attempts that were retried. */
  retries: number;
  file: FileEntry | null;
  error: UploadErrorInfo | null;
}

export interface RetryInfo {
  operation: string;
  error: UploadErrorInfo;
  failures: number;
  delayMs: number;
}

export type UploadEvents = {
  state: (snapshot: UploadSnapshot, previous: UploadState) => void;
  progress: (snapshot: UploadSnapshot) => void;
  retry: (info: RetryInfo) => void;
  done: (file: FileEntry, snapshot: UploadSnapshot) => void;
  error: (error: Error, snapshot: UploadSnapshot) => void;
};
