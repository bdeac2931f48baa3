/**
 * The protocol phases of an upload, as plain functions over a context: ask for an upload
 * (instant via challenge/proof, or a session), send chunks, complete, or send a small file in
 * one request. They do HTTP and report bytes to `UploadProgress`; the state machine, the order
 * of the phases and the resume store are `Upload`'s business.
 */

import type {
  Challenge,
  CreateUploadBody,
  CreateUploadResponse,
  FileEntry,
  OnConflict,
  Proof,
  UploadSession,
} from '@dfs/shared';
import type { ChunkBody, UploadTransport } from '../api.ts';
import { ApiError } from '../errors.ts';
import { readExact } from '../hashing/hash-file.ts';
import { proveChallenge } from '../hashing/proof.ts';
import type { FileSource, Hasher } from '../hashing/types.ts';
import type { SmallFileBatcher } from './batcher.ts';
import type { FileFromBytes } from './held-bytes.ts';
import type { Limiter } from './limiter.ts';
import { bytesOfChunks, chunkRange, missingChunks } from './plan.ts';
import type { UploadProgress } from './progress.ts';
import type { Sleep } from './retry.ts';

/** Runs `fn` with the upload's retry schedule; `retryable` can veto retrying an error. */
export type RetryFn = <T>(
  operation: string,
  fn: () => Promise<T>,
  signal: AbortSignal,
  retryable?: (err: unknown) => boolean,
) => Promise<T>;

export interface ProtocolContext {
  readonly transport: UploadTransport;
  readonly source: FileSource;
  readonly name: string;
  readonly parentId: string | null;
  /** The source's modification time (epoch ms), when there is one worth sending. */
  readonly mtime?: number | undefined;
  /** What a taken name does (may be decided once the folder was looked at); the server's default when absent. */
  onConflict?: OnConflict | undefined;
  readonly progress: UploadProgress;
  readonly retry: RetryFn;
  readonly sleep: Sleep;
  readonly now: () => number;
  hasher(): Promise<Hasher>;
  /** An instant-upload proof over a slice of the file's Blob, taken off this thread (hash workers). */
  readonly proofOfBlob?: ((nonce: string, range: Blob) => Promise<string>) | undefined;
  /** The CRC-32C of a chunk's Blob, taken off this thread (the web app's hash workers). */
  readonly crc32cOfBlob?: ((blob: Blob) => Promise<number>) | undefined;
  readonly fileFromBytes: FileFromBytes;
  /** Chunk requests in flight for this file. */
  readonly parallelism: number;
  readonly requestLimiter?: Limiter | undefined;
  /** Gathers small files into batch requests (UploadQueue); without it each goes alone. */
  readonly batcher?: SmallFileBatcher | undefined;
}

/** An upload session and the chunks the server holds (as far as this client knows). */
export class ChunkBook {
  readonly session: UploadSession;
  readonly received: Set<number>;

  constructor(session: UploadSession) {
    this.session = session;
    this.received = new Set(session.receivedChunks);
  }
  get uploadId(): string {
    return this.session.uploadId;
  }
  /** Opened without a SHA-1: `complete` must name it. */
  get speculative(): boolean {
    return this.session.sha1 === null;
  }
  missing(): number[] {
    return missingChunks(this.session.chunkCount, this.received);
  }
  confirmedBytes(): number {
    return bytesOfChunks(this.session.size, this.session.chunkSize, this.received);
  }
  /** Records chunk `index` as stored; false when it already was. */
  markReceived(index: number): boolean {
    if (this.received.has(index)) return false;
    this.received.add(index);
    return true;
  }
  forget(indexes: Iterable<number>): void {
    for (const i of indexes) this.received.delete(i);
  }
}

export type CreateResult =
  | { kind: 'instant'; file: FileEntry }
  | { kind: 'session'; session: UploadSession; resumed: boolean };

/**
 * `POST /api/uploads`. With a SHA-1 the server may know the content: the challenge is answered
 * with a proof (a refused proof gets one fresh challenge) and the file exists at once. Without
 * one the upload is speculative and always a new session.
 */
export async function createUpload(
  ctx: ProtocolContext,
  sha1: string | null,
  signal: AbortSignal,
  retryable?: (err: unknown) => boolean,
): Promise<CreateResult> {
  let proof: Proof | undefined;
  let challenges = 0;
  for (;;) {
    const body: CreateUploadBody = {
      name: ctx.name,
      size: ctx.source.size,
      ...(sha1 ? { sha1 } : {}),
      ...(ctx.parentId !== null ? { parentId: ctx.parentId } : {}),
      ...(ctx.mtime !== undefined ? { mtime: new Date(ctx.mtime).toISOString() } : {}),
      ...(proof ? { proof } : {}),
      ...(ctx.onConflict ? { onConflict: ctx.onConflict } : {}),
    };
    let res: CreateUploadResponse;
    try {
      res = await ctx.retry(
        'create upload',
        () => ctx.transport.createUpload(body, { signal }),
        signal,
        retryable,
      );
    } catch (err) {
      // an expired or consumed challenge: ask for a fresh one
      if (proof && err instanceof ApiError && err.code === 'proof_failed' && challenges < 2) {
        proof = undefined;
        continue;
      }
      throw err;
    }
    signal.throwIfAborted();
    if (res.status === 'challenge') {
      if (!sha1) throw new Error('the server answered an upload without a sha1 with a challenge');
      if (++challenges > 3) throw new Error('the server keeps answering with challenges');
      const answer = await proveOwnership(ctx, res.challenge, signal);
      proof = { challengeId: res.challenge.id, sha1: answer };
      continue;
    }
    if (res.status === 'instant') return { kind: 'instant', file: res.file };
    const { status, ...session } = res;
    return { kind: 'session', session, resumed: status === 'resumed' };
  }
}

/**
 * The answer to a challenge: SHA-1(nonce ‖ range), of the range of the file's Blob in a worker
 * where there is one (the page's thread reads none of it), else read and hashed here.
 */
async function proveOwnership(
  ctx: ProtocolContext,
  challenge: Pick<Challenge, 'nonce' | 'offset' | 'length'>,
  signal: AbortSignal,
): Promise<string> {
  const { blob } = ctx.source;
  const { nonce, offset, length } = challenge;
  if (
    blob &&
    ctx.proofOfBlob &&
    blob.size === ctx.source.size &&
    offset >= 0 &&
    length >= 0 &&
    offset + length <= blob.size
  ) {
    return ctx.proofOfBlob(nonce, blob.slice(offset, offset + length));
  }
  return proveChallenge(ctx.source, challenge, await ctx.hasher(), signal);
}

/** The wait an `upload_busy` (or any answer with Retry-After) asks for, 1–30 s. */
export function busyDelayMs(err: ApiError): number {
  const fromBody = Number(err.details.retryAfter);
  const seconds = err.retryAfter ?? (Number.isFinite(fromBody) ? fromBody : 1);
  return Math.min(30, Math.max(1, seconds)) * 1000;
}

/** How often a chunk PUT may meet `upload_busy` (another writer on that chunk) before failing. */
const MAX_CHUNK_BUSY_WAITS = 5;

/**
 * A chunk's CRC-32C from the hashing pass (possibly once the pass reaches it), or null when the
 * pass does not give it.
 */
export type KnownCrc = (
  index: number,
  chunkSize: number,
  signal: AbortSignal,
) => number | null | Promise<number | null>;

/**
 * PUTs the chunks the server lacks, `parallelism` at a time (each also takes a shared request
 * slot), each with its CRC-32C in `Content-Digest`, with retries. The first failure stops the
 * siblings; aborting `signal` stops them all. `knownCrc` is asked per chunk: a CRC the hashing
 * pass took is not taken again.
 */
export async function sendChunks(
  ctx: ProtocolContext,
  book: ChunkBook,
  signal: AbortSignal,
  knownCrc: KnownCrc,
): Promise<void> {
  signal.throwIfAborted();
  const todo = book.missing();
  if (todo.length === 0) return;
  const group = new AbortController();
  const onAbort = () => group.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  let failure: { err: unknown } | null = null;
  const lane = async () => {
    for (let index = todo.shift(); index !== undefined; index = todo.shift()) {
      try {
        await sendChunk(ctx, book, index, group.signal, knownCrc, buffers);
      } catch (err) {
        if (!failure) {
          failure = { err };
          group.abort(err);
        }
        return;
      }
    }
  };
  const lanes = Math.max(1, Math.min(ctx.parallelism, todo.length));
  // Only for this call: an upload kept in a queue's list afterwards holds no chunk buffers.
  const buffers = ctx.source.readInto && !ctx.source.blob ? new ChunkBuffers(lanes) : null;
  try {
    await Promise.all(Array.from({ length: lanes }, lane));
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  signal.throwIfAborted();
  if (failure) throw (failure as { err: unknown }).err;
}

async function sendChunk(
  ctx: ProtocolContext,
  book: ChunkBook,
  index: number,
  signal: AbortSignal,
  knownCrc: KnownCrc,
  buffers: ChunkBuffers | null,
): Promise<void> {
  const { progress, transport } = ctx;
  const session = book.session;
  const { start, end } = chunkRange(session.size, session.chunkSize, index);
  // Waiting for the hashing pass to reach this chunk holds no request slot another file could use.
  const known = await knownCrc(index, session.chunkSize, signal);
  const release = await ctx.requestLimiter?.acquire(signal);
  try {
    signal.throwIfAborted();
    const buffer = buffers?.take(session.chunkSize);
    const { body, crc32c } = await chunkBody(ctx, start, end, known, buffer); // at most `parallelism` live
    signal.throwIfAborted();
    const checksum = { crc32c };
    const onProgress = (loaded: number) => {
      if (!signal.aborted) progress.chunkProgress(index, loaded);
    };
    for (let busy = 0; ; busy++) {
      try {
        await ctx.retry(
          `chunk ${index}`,
          async () => {
            onProgress(0);
            await transport.putChunk(session.uploadId, index, body, checksum, { signal, onProgress });
          },
          signal,
        );
        break;
      } catch (err) {
        if (signal.aborted || busy >= MAX_CHUNK_BUSY_WAITS) throw err;
        if (!(err instanceof ApiError && err.code === 'upload_busy')) throw err;
        await ctx.sleep(busyDelayMs(err), signal);
      }
    }
    // Only a buffer whose request succeeded is read again: one cut off may still be on its way
    // out (the server's CRC check would refuse what it then sent, but it is left to the collector).
    if (buffer) buffers?.give(buffer);
    if (signal.aborted) return;
    progress.chunkDone(index, end - start, book.markReceived(index));
  } catch (err) {
    progress.chunkDropped(index);
    throw err;
  } finally {
    release?.();
  }
}

/**
 * What a chunk PUT sends, and its CRC-32C (`crc` when already known). A file the browser holds
 * goes as a slice of its Blob, which the browser reads as it sends: this thread never copies the
 * chunk, and reads it only when its CRC is not known yet, in a worker where there is one.
 */
async function chunkBody(
  ctx: ProtocolContext,
  start: number,
  end: number,
  crc: number | null,
  buffer: Uint8Array | undefined,
): Promise<{ body: ChunkBody; crc32c: number }> {
  const blob = ctx.source.blob;
  if (blob && blob.size === ctx.source.size) {
    const slice = blob.slice(start, end);
    if (crc !== null) return { body: slice, crc32c: crc };
    if (ctx.crc32cOfBlob) return { body: slice, crc32c: await ctx.crc32cOfBlob(slice) };
    const bytes = await readExact(ctx.source, start, end);
    return { body: slice, crc32c: (await ctx.hasher()).crc32c(bytes) };
  }
  const bytes = await readExact(ctx.source, start, end, buffer);
  return { body: bytes, crc32c: crc ?? (await ctx.hasher()).crc32c(bytes) };
}

/**
 * Chunk-sized buffers reused by the chunk PUTs of one `sendChunks` call, for a source that reads
 * into buffers (a file on disk). A fresh 8 MiB buffer per chunk is garbage the collector must
 * free: in the CLI, external memory pressure started a full collection every few chunks.
 */
class ChunkBuffers {
  readonly #free: Uint8Array[] = [];
  readonly #keep: number;

  constructor(keep: number) {
    this.#keep = keep;
  }

  take(size: number): Uint8Array {
    const i = this.#free.findIndex((b) => b.byteLength >= size);
    return i >= 0 ? this.#free.splice(i, 1)[0]! : new Uint8Array(size);
  }

  give(buffer: Uint8Array): void {
    if (this.#free.length < this.#keep) this.#free.push(buffer);
  }
}

export interface CompleteOptions {
  /** Sends the chunks `complete` reported missing (the caller updates state and progress). */
  resend(missing: number[]): Promise<void>;
  /** How long `upload_busy` answers are waited out before giving up. */
  verifyTimeoutMs: number;
}

/**
 * `POST /api/uploads/:id/complete {sha1}` until it answers the file: `upload_busy` (another
 * complete runs, or the server is still verifying) is waited out for `Retry-After` and asked
 * again without re-sending anything; `incomplete` re-sends exactly the missing chunks.
 */
export async function completeUpload(
  ctx: ProtocolContext,
  book: ChunkBook,
  sha1: string,
  signal: AbortSignal,
  options: CompleteOptions,
): Promise<FileEntry> {
  const started = ctx.now();
  let resends = 0;
  try {
    for (;;) {
      try {
        const res = await ctx.retry(
          'complete',
          () => ctx.transport.completeUpload(book.uploadId, { sha1, signal }),
          signal,
        );
        signal.throwIfAborted();
        return res.file;
      } catch (err) {
        if (signal.aborted || !(err instanceof ApiError)) throw err;
        if (err.code === 'upload_busy') {
          if (ctx.now() - started >= options.verifyTimeoutMs) {
            const minutes = Math.round(options.verifyTimeoutMs / 60_000);
            throw new ApiError(
              err.status,
              err.code,
              `${ctx.name}: the server was still verifying the upload after ${minutes} min; retry later`,
              err.details,
              err.retryAfter,
            );
          }
          ctx.progress.setVerifying(true);
          await ctx.sleep(busyDelayMs(err), signal);
          continue;
        }
        if (err.code === 'incomplete' && resends < 3) {
          // the server lost or never got some chunks: send exactly those again
          resends++;
          ctx.progress.setVerifying(false);
          const missing = Array.isArray(err.details.missing)
            ? (err.details.missing as unknown[]).filter((i): i is number => Number.isInteger(i))
            : [];
          await options.resend(missing);
          continue;
        }
        throw err;
      }
    }
  } finally {
    ctx.progress.setVerifying(false);
  }
}

/** `POST /api/files` with the bytes of a small file and their SHA-1 (checked by the server). */
export async function sendWhole(
  ctx: ProtocolContext,
  /** The file's bytes when they were read here; null when `ctx.source.blob` is sent as it is. */
  bytes: Uint8Array | null,
  sha1: string,
  signal: AbortSignal,
): Promise<FileEntry> {
  const { transport } = ctx;
  if (!transport.uploadSimple) throw new Error('this transport cannot upload in one request');
  // The hashed bytes and the Blob are the same file; should it change in between, the server's
  // sha1 check refuses the upload (422) rather than store bytes that were not hashed.
  const own = ctx.source.blob;
  let blob: Blob;
  if (own && (bytes === null || own.size === bytes.byteLength)) blob = own;
  else if (bytes) blob = ctx.fileFromBytes(bytes, ctx.name, ctx.source.type);
  else throw new Error('sendWhole needs the bytes or the source Blob');
  // A batch request takes no `onConflict`: a file that must not get the default goes alone.
  const { batcher, onConflict } = ctx;
  const batchable = !onConflict || onConflict === 'rename';
  const mtime = ctx.mtime !== undefined ? { mtime: ctx.mtime } : {};
  const file = await ctx.retry(
    'upload',
    () =>
      batcher && batchable && blob.size <= batcher.maxFileBytes
        ? batcher.submit({ blob, name: ctx.name, parentId: ctx.parentId, sha1, ...mtime }, signal)
        : transport.uploadSimple!(blob, {
            name: ctx.name,
            parentId: ctx.parentId,
            sha1,
            ...mtime,
            ...(onConflict ? { onConflict } : {}),
            signal,
          }).then((res) => res.file),
    signal,
  );
  signal.throwIfAborted();
  return file;
}
