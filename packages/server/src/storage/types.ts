import type { Readable } from 'node:stream';

/**
 * One storage node: a place that holds content-addressed objects. Every driver (local directory,
 * SFTP server, later S3) implements this contract and passes the shared conformance suite in
 * `test/storage/conformance.ts`. Keys are made by the server (`objects/ab/cd/<sha1>`); user
 * names never reach a node path.
 */
export interface StorageNode {
  readonly kind: 'local' | 'sftp' | 's3';
  /** Stable human label, e.g. `local:/srv/dfs` or `sftp://user@host:22/srv/dfs` (no password). */
  readonly name: string;

  /** Opens the node (connects, creates the root and `.tmp/`, probes capabilities). Idempotent. */
  connect(): Promise<void>;
  close(): Promise<void>;
  capabilities(): NodeCapabilities;

  /**
   * Writes `source` to `key` atomically: bytes go to `.tmp/<uuid>`, are flushed (fsync), their
   * size is checked against `expectedSize`, then the tmp file is renamed over `key`. Until the
   * returned promise resolves, `key` is either absent or holds its previous complete object; on
   * any failure the tmp file is removed (best effort) and the promise rejects.
   */
  put(key: string, source: Readable, expectedSize: number, options?: PutOptions): Promise<void>;

  /** A stream of the object's bytes, `[start, end]` inclusive when a range is given. */
  get(key: string, range?: ByteRange): Promise<Readable>;

  /** Object size, or null when the key does not exist. */
  stat(key: string): Promise<{ size: number } | null>;

  /** Removes the object; a missing key is not an error. */
  delete(key: string): Promise<void>;

  /** Space on the filesystem that holds the node's root; null where the backend cannot say (S3). */
  usage(): Promise<NodeUsage>;

  /** Cheap liveness check that touches the remote end; rejects when the node is unreachable. */
  ping(): Promise<void>;

  /** Removes tmp files older than `olderThanMs` (left by crashed writers); returns how many. */
  sweepTmp(olderThanMs: number): Promise<number>;

  /**
   * Every object in the directory `prefix` (whole key segments, e.g. `objects`) and below it, or
   * in the whole node when empty, in no particular order. Tmp files and names that are no key
   * (hidden files, `lost+found`) are left out, so whatever is listed can go to `get` and `delete`.
   */
  list(prefix?: string): AsyncIterable<ObjectEntry>;

  // ---- part files: the bytes of an unfinished upload, on the node that will keep them ---------
  //
  // An upload's chunks are written to each of its nodes as they arrive, at their final offsets
  // in one part file per upload, so `commitPart` publishes the object without the bytes coming
  // back through the app. Offsets are always whole multiples of the upload's fixed chunk size: a
  // backend with numbered parts (S3 multipart uploads) maps an offset to a part number.

  /**
   * Writes `data` at `offset` of part file `partId`, creating the file on first use. Resolves only
   * once the bytes are durable (fsync on the node), which is what a chunk's 204 promises.
   */
  writePart(partId: string, offset: number, data: Buffer, write: PartWrite): Promise<void>;

  /**
   * A stream of the part file's bytes `[start, end]`; `ObjectNotFoundError` when it is gone. Only
   * `complete` reads parts back, once every chunk is in: a backend that cannot read an unfinished
   * part (S3) finishes it first, after which it takes no more writes.
   */
  readPart(partId: string, range: ByteRange): Promise<Readable>;

  /**
   * Publishes part file `partId` as object `key` once its size is `size`: atomically, and never
   * replacing an object already at `key` (the part is dropped instead — same verified bytes).
   * Idempotent: with the part gone and `key` holding `size` bytes, it resolves.
   */
  commitPart(partId: string, key: string, size: number): Promise<void>;

  /** Removes a part file; a missing one is not an error. */
  deletePart(partId: string): Promise<void>;

  /** Part files on the node with their last write, for the sweeper to match against uploads. */
  listParts(): AsyncIterable<{ partId: string; mtimeMs: number }>;

  /**
   * A short-lived URL that serves the object straight from the backend with the given response
   * headers, for nodes whose clients can reach the backend (S3); absent or null otherwise.
   */
  presignGet?(key: string, options: PresignOptions): Promise<string | null>;
}

export interface NodeUsage {
  usedBytes: number | null;
  freeBytes: number | null;
  totalBytes: number | null;
}

export interface PartWrite {
  /** The upload's fixed chunk size: `offset / chunkSize` is the chunk's index. */
  chunkSize: number;
  /**
   * The chunk's MD5 (base64) when the caller has one, so a backend that checks one needs no pass.
   * Where the node `checksMd5`, this may be the client's claim, not yet checked by the app.
   */
  md5Base64?: string;
}

export interface PresignOptions {
  expiresInSeconds: number;
  contentDisposition: string;
  contentType: string;
}

export interface ObjectEntry {
  key: string;
  size: number;
  /** Last modification, as the node's clock has it (whole seconds on SFTP). */
  mtimeMs: number;
}

export interface PutOptions {
  /**
   * Runs once the bytes are durable in the tmp file and their size is checked, before the rename
   * publishes them. A rejection aborts the put (tmp removed, key untouched). The upload path uses
   * it to publish an object only after the whole-file hash computed in the same pass matches.
   */
  beforeCommit?: () => Promise<void>;
}

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export interface NodeCapabilities {
  atomicRename: boolean;
  fsync: boolean;
  statvfs: boolean;
  /**
   * `writePart` with an MD5 checks it against the bytes the node received and refuses the write
   * (`ChecksumMismatchError`, nothing stored) when they differ: S3's Content-MD5.
   */
  checksMd5: boolean;
}

/** Raised for a node that cannot be reached or timed out; callers fail over to another replica. */
export class NodeUnavailableError extends Error {
  override readonly name = 'NodeUnavailableError';
}

/** Raised by `writePart` on a node that `checksMd5` when the bytes it received differ from the MD5. */
export class ChecksumMismatchError extends Error {
  override readonly name = 'ChecksumMismatchError';
}

/**
 * Raised by a write the node had no room for: its disk (or the account's quota on it) is full. The
 * node is up; what it holds is whole. A local node's file system says so itself (`isNodeFull`).
 */
export class NodeFullError extends Error {
  override readonly name = 'NodeFullError';
}

/** Whether a failed write failed for lack of room on the node: `NodeFullError`, ENOSPC or EDQUOT. */
export function isNodeFull(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof NodeFullError) return true;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  }
  return false;
}

/** Raised by `get` for a key that is not on the node. */
export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';
}

/** The content-addressed key of a content's bytes on every node. */
export function objectKey(sha1: string): string {
  return `objects/${sha1.slice(0, 2)}/${sha1.slice(2, 4)}/${sha1}`;
}

/**
 * Object keys are made by the server, so anything outside this shape is a bug or an attack: each
 * segment starts with `[a-z0-9]`, which rules out `..`, `.tmp` and hidden names, and a key never
 * starts with `/`. Every driver calls this before a key touches a path.
 */
const KEY_RE = /^[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)*$/;

export function isObjectKey(key: string): boolean {
  return typeof key === 'string' && key.length <= 1024 && KEY_RE.test(key);
}

/** Part ids are made by the server (upload ids, scratch uuids): no path can hide in one. */
const PART_ID_RE = /^[0-9a-z][0-9a-z-]{7,63}$/;

export function assertPartId(partId: string): void {
  if (typeof partId !== 'string' || !PART_ID_RE.test(partId)) {
    throw new Error(`invalid part id ${JSON.stringify(partId)}`);
  }
}

export function isPartId(partId: string): boolean {
  return PART_ID_RE.test(partId);
}

export function assertObjectKey(key: string): void {
  if (!isObjectKey(key)) {
    throw new Error(`invalid object key ${JSON.stringify(key)}`);
  }
}

/**
 * What `commitPart` does, given the part file's and the target object's sizes (null: absent), for
 * every driver alike: `done` (an earlier attempt published it), `drop` (the same verified bytes are
 * already stored: keep them, never replace a stored object, and delete the part) or `publish`.
 */
export function commitAction(
  part: { size: number } | null,
  existing: { size: number } | null,
  partId: string,
  key: string,
  size: number,
): 'done' | 'drop' | 'publish' {
  if (!part) {
    if (existing?.size === size) return 'done';
    throw new ObjectNotFoundError(`no part ${partId} and no object ${key}`);
  }
  if (part.size !== size) throw new Error(`size mismatch: part has ${part.size} bytes, expected ${size}`);
  return existing ? 'drop' : 'publish';
}
