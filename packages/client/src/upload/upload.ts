import { type FileEntry, MTIME_MAX_AHEAD_MS, type UploadSession } from '@dfs/shared';
import { Emitter } from '../emitter.ts';
import { ApiError, CanceledError, errorMessage, isAbortError } from '../errors.ts';
import { createHasher } from '../hashing/create.ts';
import { hashFileWith, readExact } from '../hashing/hash-file.ts';
import { webCryptoAvailable, webCryptoSha1 } from '../hashing/sha1-bytes.ts';
import type { FileSource, Hasher, HashFileFn } from '../hashing/types.ts';
import { HASH_PIECE_SIZE } from '../hashing/types.ts';
import { fileFromBytes } from './held-bytes.ts';
import { PieceCrcs } from './piece-crcs.ts';
import { UploadProgress } from './progress.ts';
import {
  ChunkBook,
  completeUpload,
  createUpload,
  type ProtocolContext,
  sendChunks,
  sendWhole,
} from './protocol.ts';
import { fingerprint, type ResumeStore } from './resume.ts';
import { DEFAULT_RETRY_DELAYS, sleep as defaultSleep, type Sleep, withRetry } from './retry.ts';
import { ACTIVE_STATES, canTransition, FINAL_STATES, type UploadState } from './state.ts';
import {
  DEFAULT_SMALL_FILE_LIMIT,
  DEFAULT_SPECULATIVE_THRESHOLD,
  DEFAULT_VERIFY_TIMEOUT_MS,
  type NameTakenChoice,
  type UploadErrorInfo,
  type UploadEvents,
  type UploadOptions,
  type UploadRoute,
  type UploadSnapshot,
} from './types.ts';

export type {
  RetryInfo,
  UploadErrorInfo,
  UploadEvents,
  UploadOptions,
  UploadRoute,
  UploadSnapshot,
} from './types.ts';

/** The upload session is gone on the server (expired, swept): start a new one. */
class SessionLost extends Error {}
/**
 * The largest server chunk a speculative upload's hashing pass takes as its piece, so that each
 * chunk's CRC comes from that pass (pieces in flight to the hash workers are held in memory).
 */
const MAX_ALIGNED_PIECE = 4 * HASH_PIECE_SIZE;

/** The SHA-1 from the resume store or option did not match the content: hash again. */
class StaleSha1 extends Error {}
/**
 * The file changed while uploading (`chunk_conflict`, or our own SHA-1 refused): the session
 * cannot be finished, so it is dropped and a retry starts over.
 */
class FileChanged extends ApiError {}
/** Why a speculative transfer stopped: the server had the content (not an error). */
const INSTANT_FOUND = Symbol('instant upload found');

let nextUploadId = 1;

function errorInfo(err: unknown): UploadErrorInfo {
  if (err instanceof ApiError)
    return { name: err.name, message: err.message, code: err.code, status: err.status };
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: 'Error', message: String(err) };
}

function isGone(err: unknown): boolean {
  return err instanceof ApiError && (err.status === 404 || err.status === 410);
}

function isCode(err: unknown, code: string): err is ApiError {
  return err instanceof ApiError && err.code === code;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** An AbortController that also aborts (with the same reason) when `parent` does. */
function childController(parent: AbortSignal): { ctl: AbortController; dispose(): void } {
  const ctl = new AbortController();
  const onAbort = () => ctl.abort(parent.reason);
  if (parent.aborted) onAbort();
  else parent.addEventListener('abort', onAbort, { once: true });
  return { ctl, dispose: () => parent.removeEventListener('abort', onAbort) };
}

/**
 * One file's upload. Small files: hash in memory → `POST /api/files`. Others: hash →
 * `POST /api/uploads` (challenge/proof → instant, or a session) → PUT the missing chunks with
 * bounded parallelism and retries → complete. Big files (≥ `speculativeThreshold`) open a
 * session without the SHA-1 and send while hashing, then ask for an instant upload and
 * `complete {sha1}`. Knows nothing of the UI: read `snapshot()` and listen to events.
 */
export class Upload {
  readonly id: string;
  readonly source: FileSource;
  readonly name: string;
  readonly parentId: string | null;
  readonly #o: UploadOptions;
  readonly #events = new Emitter<UploadEvents>();
  readonly #now: () => number;
  readonly #sleep: Sleep;
  readonly #hashFile: HashFileFn;
  readonly #fingerprint: string;
  readonly #progress: UploadProgress;
  readonly #ctx: ProtocolContext;

  #state: UploadState = 'queued';
  #ctl: AbortController | null = null;
  #hasherPromise: Promise<Hasher> | null = null;
  #deferred: Deferred<FileEntry> | null = null;
  #route: UploadRoute | null = null;

  #sha1: string | null;
  #sha1Trusted = false; // computed by us in this run (false: from the resume store / option)
  /** The piece CRCs of this run's hashing pass, also while it runs (speculative chunks wait on them). */
  #crcs: PieceCrcs | null = null;
  /** The SHA-1 the server answered "unknown content" for (no second instant check needed). */
  #checkedSha1: string | null = null;
  #storeRead = false;
  #uploadId: string | null = null;
  #book: ChunkBook | null = null;
  #file: FileEntry | null = null;
  #error: UploadErrorInfo | null = null;
  #instant = false;
  #skipped = false;
  /** `skipIdentical` was answered for this upload (a later attempt does not ask again). */
  #skipChecked = false;

  /** Set by `UploadQueue`: called when `resume()` puts this upload back in line. */
  onRequeue: (() => void) | null = null;

  constructor(source: FileSource, options: UploadOptions) {
    this.id = options.id ?? `u${nextUploadId++}`;
    this.source = source;
    this.name = options.name ?? source.name;
    this.parentId = options.parentId ?? null;
    this.#o = options;
    this.#now = options.now ?? (() => Date.now());
    this.#sleep = options.sleep ?? defaultSleep;
    this.#hashFile = options.hashFile ?? hashFileWith(options.hasher);
    this.#fingerprint = fingerprint(source);
    this.#progress = new UploadProgress({
      size: source.size,
      now: this.#now,
      speedWindowMs: options.speedWindowMs ?? 5000,
      intervalMs: options.progressIntervalMs ?? 100,
      emit: () => this.#events.emit('progress', this.snapshot()),
    });
    this.#sha1 = options.sha1?.toLowerCase() ?? null;
    if (this.#sha1) this.#progress.hashKnown();
    this.#ctx = {
      transport: options.transport,
      source,
      name: this.name,
      parentId: this.parentId,
      mtime: sendableMtime(options.mtime ?? source.lastModified, Date.now()),
      onConflict: options.onConflict,
      progress: this.#progress,
      retry: (operation, fn, signal, retryable) => this.#retry(operation, fn, signal, retryable),
      sleep: this.#sleep,
      now: this.#now,
      hasher: () => this.#hasher(),
      crc32cOfBlob: options.crc32cOfBlob,
      proofOfBlob: options.proofOfBlob,
      fileFromBytes: options.fileFromBytes ?? fileFromBytes,
      parallelism: options.parallelism ?? 4,
      requestLimiter: options.requestLimiter,
      batcher: options.batcher,
    };
  }

  get state(): UploadState {
    return this.#state;
  }
  get file(): FileEntry | null {
    return this.#file;
  }
  get fingerprint(): string {
    return this.#fingerprint;
  }
  /** How the file travels: fixed once it started, the expected route before. */
  get route(): UploadRoute {
    return this.#route ?? this.#pickRoute();
  }

  on<K extends keyof UploadEvents>(event: K, listener: UploadEvents[K]): () => void {
    return this.#events.on(event, listener);
  }
  off<K extends keyof UploadEvents>(event: K, listener: UploadEvents[K]): void {
    this.#events.off(event, listener);
  }

  /** Starts (or, from paused/error, resumes) now. Returns at once; use `result()` to await. */
  start(): void {
    if (this.#state === 'paused' || this.#state === 'error') this.#setState('queued');
    if (this.#state !== 'queued' || this.#ctl) return;
    void this.#run();
  }

  /** Settles when the upload is done (the file), fails (its error) or is canceled (`CanceledError`). */
  result(): Promise<FileEntry> {
    if (this.#state === 'done' && this.#file) return Promise.resolve(this.#file);
    if (this.#state === 'canceled') return Promise.reject(new CanceledError());
    this.#deferred ??= deferred();
    return this.#deferred.promise;
  }

  /** Aborts in-flight requests and stops; `resume()` continues from what the server holds. */
  pause(): void {
    if (this.#state !== 'queued' && !ACTIVE_STATES.has(this.#state)) return;
    this.#abortRun(new DOMException('upload paused', 'AbortError'));
    this.#setState('paused');
  }

  /** From paused or error: back in line (queue) or started at once (standalone). */
  resume(): void {
    if (this.#state !== 'paused' && this.#state !== 'error') return;
    this.#error = null;
    this.#setState('queued');
    if (this.onRequeue) this.onRequeue();
    else this.start();
  }

  /** Same as `resume()`: try a failed upload again. */
  retry(): void {
    this.resume();
  }

  /** Aborts, deletes the server's upload session and forgets the resume entry. */
  async cancel(): Promise<void> {
    if (FINAL_STATES.has(this.#state)) return;
    this.#abortRun(new CanceledError());
    this.#setState('canceled');
    this.#deferred?.reject(new CanceledError());
    this.#deferred = null;
    const uploadId = this.#uploadId;
    await Promise.allSettled([
      this.#o.resumeStore?.delete(this.#fingerprint),
      uploadId ? this.#o.transport.abortUpload(uploadId) : undefined,
    ]);
  }

  snapshot(): UploadSnapshot {
    const session = this.#book?.session ?? null;
    return {
      id: this.id,
      name: this.name,
      size: this.source.size,
      parentId: this.parentId,
      state: this.#state,
      route: this.route,
      ...this.#progress.view(this.#state),
      instant: this.#instant,
      skipped: this.#skipped,
      sha1: this.#sha1,
      uploadId: this.#uploadId,
      chunkSize: session?.chunkSize ?? null,
      chunkCount: session?.chunkCount ?? null,
      chunksDone: this.#book?.received.size ?? 0,
      file: this.#file,
      error: this.#error,
    };
  }

  // ---- plumbing ----

  #abortRun(reason: unknown): void {
    const ctl = this.#ctl;
    this.#ctl = null;
    ctl?.abort(reason);
    this.#progress.clearInflight();
  }

  /** With `ctl`: only while that run is current (a paused or canceled run changes nothing). */
  #setState(to: UploadState, ctl?: AbortController): void {
    if (ctl && (ctl !== this.#ctl || ctl.signal.aborted)) throw ctl.signal.reason;
    const from = this.#state;
    if (from === to) return;
    if (!canTransition(from, to)) throw new Error(`upload ${this.id}: invalid transition ${from} → ${to}`);
    this.#state = to;
    if (to === 'uploading') this.#progress.resetSendSpeed();
    this.#progress.markEmitted();
    this.#events.emit('state', this.snapshot(), from);
  }

  #hasher(): Promise<Hasher> {
    this.#hasherPromise ??= Promise.resolve(this.#o.hasher ?? createHasher());
    return this.#hasherPromise;
  }

  #retry<T>(
    operation: string,
    fn: () => Promise<T>,
    signal: AbortSignal,
    retryable?: (err: unknown) => boolean,
  ): Promise<T> {
    return withRetry(fn, {
      delays: this.#o.retryDelays ?? DEFAULT_RETRY_DELAYS,
      signal,
      sleep: this.#sleep,
      ...(retryable ? { retryable } : {}),
      onRetry: (err, ctx, delayMs) => {
        this.#progress.retried();
        this.#events.emit('retry', { operation, error: errorInfo(err), failures: ctx.failures, delayMs });
      },
    });
  }

  get #store(): ResumeStore | undefined {
    return this.#o.resumeStore;
  }

  async #saveEntry(): Promise<void> {
    await this.#store
      ?.set(this.#fingerprint, {
        sha1: this.#sha1,
        uploadId: this.#uploadId,
        size: this.source.size,
        name: this.name,
        savedAt: Date.now(),
      })
      .catch(() => {});
  }

  /**
   * Files at or below this size go in one request. The server takes a body of any size there
   * (bigger than a chunk, it streams into a part file), so the bound is the client's memory: the
   * file is read whole to hash it.
   */
  #smallLimit(): number {
    if (!this.#o.transport.uploadSimple) return -1;
    return this.#o.smallFileLimit ?? DEFAULT_SMALL_FILE_LIMIT;
  }

  #pickRoute(): UploadRoute {
    const size = this.source.size;
    if (size <= this.#smallLimit()) return 'small';
    if (size >= (this.#o.speculativeThreshold ?? DEFAULT_SPECULATIVE_THRESHOLD)) return 'speculative';
    return 'chunked';
  }

  // ---- the run ----

  async #run(): Promise<void> {
    const ctl = new AbortController();
    this.#ctl = ctl;
    this.#progress.clearInflight();
    try {
      for (let restarts = 0; ; restarts++) {
        try {
          await this.#attempt(ctl);
          return;
        } catch (err) {
          if (ctl.signal.aborted || restarts >= 3) throw err;
          if (err instanceof SessionLost) {
            this.#book = null;
            this.#uploadId = null;
            continue;
          }
          if (err instanceof StaleSha1) {
            await this.#store?.delete(this.#fingerprint).catch(() => {});
            this.#forgetContent();
            continue;
          }
          throw err;
        }
      }
    } catch (err) {
      if (ctl !== this.#ctl || ctl.signal.aborted) return; // paused or canceled meanwhile
      if (err instanceof FileChanged) await this.#abandon();
      if (ctl !== this.#ctl || ctl.signal.aborted) return;
      this.#ctl = null;
      this.#progress.clearInflight();
      const error = err instanceof Error ? err : new Error(errorMessage(err));
      this.#error = errorInfo(error);
      this.#setState('error');
      this.#deferred?.reject(error);
      this.#deferred = null;
      this.#events.emit('error', error, this.snapshot());
    }
  }

  /** Forgets the SHA-1 and the session: the next attempt starts from scratch. */
  #forgetContent(): void {
    this.#sha1 = null;
    this.#sha1Trusted = false;
    this.#crcs?.close();
    this.#crcs = null;
    this.#checkedSha1 = null;
    this.#book = null;
    this.#uploadId = null;
    this.#progress.resetHash();
  }

  async #attempt(ctl: AbortController): Promise<void> {
    const { signal } = ctl;
    // A one-request upload has nothing to resume, so it never touches the resume store (an
    // IndexedDB transaction each way in the browser, which a folder of small files would queue).
    const small = this.#pickRoute() === 'small' && !this.#uploadId;
    if (!this.#storeRead && !small) {
      await this.#readEntry(signal);
      this.#storeRead = true;
    }
    const there = await this.#alreadyThere(ctl);
    let session: UploadSession | null = null;
    if (!there && this.#uploadId) {
      this.#setState('checking', ctl);
      session = await this.#lookUp(this.#uploadId, signal);
    }
    if (there) {
      this.#file = there;
      this.#skipped = true;
      this.#setState('checking', ctl);
    } else if (session) {
      this.#route = session.sha1 === null ? 'speculative' : 'chunked';
      if (session.sha1 === null) await this.#speculative(ctl, session);
      else await this.#chunked(ctl, session);
    } else {
      const route = this.#pickRoute();
      this.#route = route === 'speculative' && this.#sha1 ? 'chunked' : route;
      if (this.#route === 'small') await this.#small(ctl);
      else if (this.#route === 'speculative') await this.#speculative(ctl, null);
      else await this.#chunked(ctl, null);
    }
    this.#setState('done', ctl);
    this.#ctl = null;
    if (this.#route !== 'small') await this.#store?.delete(this.#fingerprint).catch(() => {});
    const file = this.#file!;
    this.#deferred?.resolve(file);
    this.#deferred = null;
    this.#events.emit('done', file, this.snapshot());
  }

  /**
   * With `skipIdentical`: the file the target folder already holds under this name with this
   * size and SHA-1, or null. The file is hashed only when one of that name and size is there;
   * the SHA-1 must be computed here (a remembered one may be stale). A session of ours to
   * continue means the file never arrived: nothing to look up.
   */
  async #alreadyThere(ctl: AbortController): Promise<FileEntry | null> {
    const index = this.#o.skipIdentical;
    if (!index || this.#skipChecked || this.#uploadId) return null;
    const { signal } = ctl;
    this.#setState('checking', ctl);
    const there = await this.#retry(
      'list the target folder',
      () => index.find(this.parentId, this.name),
      signal,
    );
    signal.throwIfAborted();
    if (!there) {
      this.#skipChecked = true;
      return null;
    }
    if (there.sha1 && there.size === this.source.size) {
      if (!this.#sha1 || !this.#sha1Trusted) {
        if (this.#sha1 && !this.#sha1Trusted) this.#forgetContent();
        if (this.#pickRoute() === 'small') {
          this.#sha1 = await this.#sha1OfSmall(null, signal);
          this.#sha1Trusted = true;
        } else {
          await this.#hashFirst(ctl);
        }
      }
      if (this.#sha1 === there.sha1) {
        this.#skipChecked = true;
        return there;
      }
    }
    const choice = await this.#askNameTaken(there, signal);
    this.#skipChecked = true;
    return choice === 'skip' ? there : null;
  }

  /**
   * The name is taken by other content: `onNameTaken` decides this upload's `onConflict` (or
   * skips it). Asked before any byte goes, so a "skip" costs nothing.
   */
  async #askNameTaken(there: FileEntry, signal: AbortSignal): Promise<NameTakenChoice | null> {
    const ask = this.#o.onNameTaken;
    if (!ask) return null;
    const choice = await ask({
      id: this.id,
      name: this.name,
      parentId: this.parentId,
      size: this.source.size,
      existing: there,
      signal,
    });
    signal.throwIfAborted();
    if (choice !== 'skip') this.#ctx.onConflict = choice;
    return choice;
  }

  /** What the resume store remembers: a SHA-1 (skip hashing) and/or a session to continue. */
  async #readEntry(signal: AbortSignal): Promise<void> {
    if (!this.#store) return;
    const entry = await this.#store.get(this.#fingerprint).catch(() => null);
    signal.throwIfAborted();
    if (!entry || entry.size !== this.source.size) return;
    const sha1 = typeof entry.sha1 === 'string' && /^[0-9a-f]{40}$/.test(entry.sha1) ? entry.sha1 : null;
    if (sha1 && !this.#sha1) {
      this.#sha1 = sha1;
      this.#sha1Trusted = false;
      this.#progress.hashKnown();
    }
    if (entry.uploadId && !this.#uploadId) this.#uploadId = entry.uploadId;
  }

  /** The session to continue, or null (gone, or for other content) to start a new one. */
  async #lookUp(uploadId: string, signal: AbortSignal): Promise<UploadSession | null> {
    let s: UploadSession;
    try {
      s = await this.#retry('get upload', () => this.#o.transport.getUpload(uploadId, { signal }), signal);
    } catch (err) {
      if (!isGone(err)) throw err;
      this.#uploadId = null;
      return null;
    }
    // The server is the authority on which chunks it holds.
    const fits = s.size === this.source.size && (s.sha1 === null || s.sha1 === this.#sha1);
    if (!fits) this.#uploadId = null;
    return fits ? s : null;
  }

  /** Takes `session` as this upload's; remembers it at once so a reload can continue it. */
  async #adopt(session: UploadSession): Promise<void> {
    this.#book = new ChunkBook(session);
    this.#uploadId = session.uploadId;
    this.#progress.setConfirmed(this.#book.confirmedBytes());
    await this.#saveEntry();
  }

  // ---- small files: one request ----

  async #small(ctl: AbortController): Promise<void> {
    const { signal } = ctl;
    this.#setState('uploading', ctl);
    // With the browser's Blob and a worker to hash it, this thread never reads the bytes: the
    // worker hashes the Blob and the request sends the same Blob.
    const { blob } = this.source;
    const inWorker = blob && this.#o.sha1OfBlob ? this.#o.sha1OfBlob : null;
    let bytes: Uint8Array | null = null;
    if (!inWorker) {
      bytes = await readExact(this.source, 0, this.source.size);
      signal.throwIfAborted();
    }
    if (!this.#sha1) {
      this.#sha1 = await this.#sha1OfSmall(bytes, signal);
      this.#sha1Trusted = true;
    }
    try {
      this.#file = await sendWhole(this.#ctx, bytes, this.#sha1, signal);
    } catch (err) {
      if (isCode(err, 'hash_mismatch')) {
        if (!this.#sha1Trusted) throw new StaleSha1(err.message);
        // the bytes hashed here are the bytes sent: they were altered on the way
        throw new ApiError(
          err.status,
          err.code,
          `${this.name}: the server received other bytes than were sent; try again`,
          err.details,
        );
      }
      throw err;
    }
    this.#progress.sentWhole(this.source.size);
  }

  /** A small file's SHA-1: of its Blob in a worker when there is one, else of `bytes` (read if null). */
  async #sha1OfSmall(bytes: Uint8Array | null, signal: AbortSignal): Promise<string> {
    const { blob } = this.source;
    const inWorker = blob && this.#o.sha1OfBlob ? this.#o.sha1OfBlob : null;
    const stop = this.#progress.hashStarted();
    try {
      let sha1: string;
      if (inWorker && blob) sha1 = await inWorker(blob);
      else sha1 = await this.#sha1OfBytes(bytes ?? (await readExact(this.source, 0, this.source.size)));
      stop(true);
      signal.throwIfAborted();
      return sha1;
    } finally {
      stop(false);
    }
  }

  #sha1OfBytes(bytes: Uint8Array): Promise<string> {
    if (this.#o.sha1OfBytes) return this.#o.sha1OfBytes(bytes);
    return (async () => {
      const given = this.#o.hasher ? await this.#hasher() : null;
      if (given?.backend === 'node') return given.sha1(bytes);
      if (webCryptoAvailable()) return webCryptoSha1(bytes);
      return (given ?? (await this.#hasher())).sha1(bytes);
    })();
  }

  // ---- chunked: hash, then ask, then send ----

  async #chunked(ctl: AbortController, existing: UploadSession | null): Promise<void> {
    const { signal } = ctl;
    if (!this.#sha1) await this.#hashFirst(ctl);
    let session = existing;
    if (!session) {
      this.#setState('checking', ctl);
      const res = await createUpload(this.#ctx, this.#sha1!, signal);
      if (res.kind === 'instant') {
        this.#finishInstant(res.file);
        return;
      }
      session = res.session;
    }
    await this.#adopt(session);
    this.#setState('uploading', ctl);
    this.#progress.tick(true);
    await this.#send(signal);
    this.#setState('completing', ctl);
    await this.#complete(ctl);
  }

  async #hashFirst(ctl: AbortController): Promise<void> {
    const { signal } = ctl;
    const release = await this.#o.hashLimiter?.acquire(signal);
    try {
      this.#setState('hashing', ctl);
      this.#progress.tick(true);
      await this.#hash(signal);
    } finally {
      release?.();
    }
    await this.#saveEntry();
  }

  /**
   * Hashes the whole file (SHA-1 + piece CRC-32Cs) and keeps the result. The CRCs go to `crcs`
   * as they come, for the chunks that wait on them.
   */
  async #hash(signal: AbortSignal, crcs = this.#openCrcs()): Promise<string> {
    const stop = this.#progress.hashStarted();
    try {
      const digest = await this.#hashFile(this.source, {
        pieceSize: crcs.pieceSize,
        signal,
        onPiece: (i, crc) => crcs.set(i, crc),
        onProgress: (n) => {
          if (!signal.aborted) this.#progress.hashed(n);
        },
      });
      signal.throwIfAborted();
      this.#sha1 = digest.sha1;
      this.#sha1Trusted = true;
      stop(true);
      return digest.sha1;
    } finally {
      // Chunks still waiting on a pass that stopped take their own CRCs.
      crcs.close();
      stop(false);
    }
  }

  // ---- speculative: send while hashing ----

  async #speculative(ctl: AbortController, existing: UploadSession | null): Promise<void> {
    const { signal } = ctl;
    let session = existing;
    if (!session) {
      this.#setState('checking', ctl);
      const res = await createUpload(this.#ctx, null, signal);
      if (res.kind === 'instant') {
        this.#finishInstant(res.file);
        return;
      }
      session = res.session;
    }
    await this.#adopt(session);
    const book = this.#book!;
    this.#setState('uploading', ctl);
    this.#progress.tick(true);

    // `run` stops hashing and sending together (a failure of either, a pause, a cancel);
    // `sends` stops only the transfer (the server turned out to have the content).
    const run = childController(signal);
    const sends = childController(run.ctl.signal);
    try {
      // The chunks wait for the pass's CRCs from the start, also while it waits for a hash slot.
      const hashed = this.#sha1
        ? Promise.resolve(this.#sha1)
        : this.#hashBeside(ctl, run.ctl.signal, this.#openCrcs());
      const found = hashed.then(async (sha1) => {
        if (this.#state === 'hashing') this.#setState('checking', ctl);
        const file = await this.#askInstant(sha1, book, run.ctl.signal);
        if (file) sends.ctl.abort(INSTANT_FOUND);
        return file;
      });
      found.catch((err) => run.ctl.abort(err));
      try {
        await this.#send(sends.ctl.signal);
      } catch (err) {
        if (sends.ctl.signal.reason !== INSTANT_FOUND || signal.aborted) {
          run.ctl.abort(err);
          throw err;
        }
      }
      // Every chunk is on the server (or it had the content): the hash decides what comes next.
      if (sends.ctl.signal.reason !== INSTANT_FOUND) this.#setState(this.#sha1 ? 'checking' : 'hashing', ctl);
      const file = await found;
      if (file) {
        await this.#dropSession(book, signal);
        this.#finishInstant(file);
        return;
      }
    } finally {
      sends.dispose();
      run.dispose();
    }
    this.#setState('completing', ctl);
    await this.#complete(ctl);
  }

  /**
   * A fresh book of piece CRCs for the next hashing pass. With a session already open
   * (speculative), its chunks are the pieces.
   */
  #openCrcs(): PieceCrcs {
    const chunkSize = this.#book?.session.chunkSize;
    const pieceSize = chunkSize && chunkSize <= MAX_ALIGNED_PIECE ? chunkSize : HASH_PIECE_SIZE;
    this.#crcs?.close();
    this.#crcs = new PieceCrcs(pieceSize);
    return this.#crcs;
  }

  /** The hash of a speculative upload, beside the transfer; remembered as soon as it is known. */
  async #hashBeside(ctl: AbortController, signal: AbortSignal, crcs: PieceCrcs): Promise<string> {
    let sha1: string;
    try {
      const release = await this.#o.hashLimiter?.acquire(signal);
      try {
        sha1 = await this.#hash(signal, crcs);
      } finally {
        release?.();
      }
    } finally {
      crcs.close();
    }
    if (ctl === this.#ctl) await this.#saveEntry();
    return sha1;
  }

  /**
   * Once the hash is known: does the server have the content? A challenge is answered and the
   * file exists at once; any other answer opened a second session, deleted right away (the
   * speculative one carries on). The check only saves bytes, so a refusal is not an error.
   */
  async #askInstant(sha1: string, book: ChunkBook, signal: AbortSignal): Promise<FileEntry | null> {
    if (this.#checkedSha1 === sha1) return null;
    try {
      const res = await createUpload(this.#ctx, sha1, signal, (err) => !isCode(err, 'too_many_uploads'));
      if (res.kind === 'instant') return res.file;
      if (res.session.uploadId !== book.uploadId) {
        const id = res.session.uploadId;
        await this.#retry(
          'abort second upload',
          () => this.#o.transport.abortUpload(id, { signal }),
          signal,
        ).catch((err) => {
          if (signal.aborted) throw err;
        });
      }
    } catch (err) {
      if (signal.aborted || isAbortError(err)) throw err;
      // quota, open-upload limit, a proof refused twice…: finish the speculative upload instead
    }
    this.#checkedSha1 = sha1;
    return null;
  }

  /** Deletes a speculative upload that is not needed any more (the content was known). */
  async #dropSession(book: ChunkBook, signal: AbortSignal): Promise<void> {
    await this.#retry(
      'abort upload',
      () => this.#o.transport.abortUpload(book.uploadId, { signal }),
      signal,
    ).catch((err) => {
      if (signal.aborted) throw err;
      // it expires on its own; the file exists either way
    });
    this.#progress.clearInflight();
  }

  #finishInstant(file: FileEntry): void {
    this.#file = file;
    this.#instant = true;
  }

  // ---- shared by chunked and speculative ----

  async #send(signal: AbortSignal): Promise<void> {
    const book = this.#book!;
    try {
      await sendChunks(this.#ctx, book, signal, (index, chunkSize, sig) =>
        this.#crcs ? this.#crcs.get(index, chunkSize, sig) : null,
      );
    } catch (err) {
      if (isGone(err)) throw new SessionLost(errorMessage(err));
      if (isCode(err, 'chunk_conflict')) {
        // The server holds other bytes for a chunk: the file changed since the upload began.
        throw this.#changedError(err, 'a part the server already has differs from the file now');
      }
      throw err;
    }
  }

  async #complete(ctl: AbortController): Promise<void> {
    const { signal } = ctl;
    const book = this.#book!;
    try {
      this.#file = await completeUpload(this.#ctx, book, this.#sha1!, signal, {
        verifyTimeoutMs: this.#o.verifyTimeoutMs ?? DEFAULT_VERIFY_TIMEOUT_MS,
        resend: async (missing) => {
          book.forget(missing);
          this.#progress.setConfirmed(book.confirmedBytes());
          this.#setState('uploading', ctl);
          await this.#send(signal);
          this.#setState('completing', ctl);
        },
      });
    } catch (err) {
      if (signal.aborted) throw err;
      if (isCode(err, 'hash_mismatch')) {
        // nothing was registered and the session is gone
        if (!this.#sha1Trusted) throw new StaleSha1(err.message);
        throw this.#changedError(err, 'the server computed another SHA-1 than the one hashed here');
      }
      if (isGone(err)) throw new SessionLost(errorMessage(err));
      throw err;
    }
  }

  /** Forgets a session that cannot be completed (and the resume entry pointing at it). */
  async #abandon(): Promise<void> {
    const uploadId = this.#uploadId;
    this.#forgetContent();
    await Promise.allSettled([
      uploadId ? this.#o.transport.abortUpload(uploadId) : undefined,
      this.#store?.delete(this.#fingerprint),
    ]);
  }

  #changedError(err: ApiError, what: string): FileChanged {
    return new FileChanged(
      err.status,
      err.code,
      `${this.name} changed while it was uploading (${what}); upload it again`,
      err.details,
      err.retryAfter,
    );
  }
}

/**
 * A time the server keeps, or undefined: it refuses times before 1970 or more than a day ahead
 * (a Blob made in memory, a wrong clock), and a refused time must not fail the upload itself.
 */
function sendableMtime(mtime: number | undefined, now: number): number | undefined {
  if (mtime === undefined || !Number.isFinite(mtime) || mtime < 0) return undefined;
  return mtime > now + MTIME_MAX_AHEAD_MS ? undefined : Math.trunc(mtime);
}
