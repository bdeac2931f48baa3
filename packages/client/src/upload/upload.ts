import type { CreateUploadBody, CreateUploadResponse, FileEntry, Proof, UploadSession } from '@dfs/shared';
import type { UploadTransport } from '../api.ts';
import { Emitter } from '../emitter.ts';
import { ApiError, CanceledError, errorMessage } from '../errors.ts';
import { createHasher } from '../hashing/create.ts';
import { hashFileWith, readExact } from '../hashing/hash-file.ts';
import { proveChallenge } from '../hashing/proof.ts';
import type { FileDigest, FileSource, Hasher, HashFileFn } from '../hashing/types.ts';
import { HASH_PIECE_SIZE } from '../hashing/types.ts';
import { hexToBase64 } from '../util/bytes.ts';
import type { Limiter } from './limiter.ts';
import { bytesOfChunks, chunkRange, missingChunks, precomputedMd5 } from './plan.ts';
import { fingerprint, type ResumeEntry, type ResumeStore } from './resume.ts';
import { DEFAULT_RETRY_DELAYS, sleep as defaultSleep, type Sleep, withRetry } from './retry.ts';
import { etaSeconds, SpeedMeter } from './speed.ts';
import { ACTIVE_STATES, canTransition, FINAL_STATES, type UploadState } from './state.ts';

export interface UploadOptions {
  /** The API (a `DfsApi`) or any object with the same five upload methods. */
  transport: UploadTransport;
  /** Target folder; root when absent or null. */
  parentId?: string | null;
  /** Name on the server (default: `source.name`). */
  name?: string;
  /** A known SHA-1 of the content: skips hashing (chunk MD5s are then computed while sending). */
  sha1?: string;
  /** Hashes the file (default: hash-wasm on this thread). The web app passes `WorkerHashPool#hashFile`. */
  hashFile?: HashFileFn;
  /** Hasher for chunk MD5s computed at send time and for challenge proofs (default: `createHasher()`). */
  hasher?: Hasher | Promise<Hasher>;
  /** Chunk requests in flight for this file (and chunks in memory); default 4. */
  parallelism?: number;
  /** Waits between attempts; default `[0, 1000, 3000, 5000]`. */
  retryDelays?: readonly number[];
  /** Remembers sha1 + uploadId by fingerprint so a reload resumes without re-hashing. */
  resumeStore?: ResumeStore;
  /** Shared chunk-request slots (UploadQueue). */
  requestLimiter?: Limiter;
  /** Shared hashing slots (UploadQueue). */
  hashLimiter?: Limiter;
  /** Moving-average window of `speed`; default 5000 ms. */
  speedWindowMs?: number;
  /** Minimum ms between `progress` events (state changes and finished chunks always emit); default 100. */
  progressIntervalMs?: number;
  /** Injectable clock and sleep (tests). */
  now?: () => number;
  sleep?: Sleep;
  id?: string;
}

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
  /** Bytes hashed (= size once the SHA-1 is known). */
  bytesHashed: number;
  /** Bytes the server holds for this upload: confirmed chunks + in-flight progress (= size when done). */
  bytesUploaded: number;
  /** Bytes this client actually transferred (0 for an instant upload or for chunks resumed from earlier). */
  sentBytes: number;
  /** Bytes/s of the current phase (hashing or transferring), moving average. */
  speed: number;
  /** Seconds left in the current phase at `speed`, null when unknown. */
  eta: number | null;
  /** Finished by proof of ownership, without sending bytes. */
  instant: boolean;
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

/** The upload session is gone on the server (expired, swept): start a new one. */
class SessionLost extends Error {}
/** The SHA-1 from the resume store or option did not match the content: hash again. */
class StaleSha1 extends Error {}

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

/**
 * One file's upload: hash → POST /api/uploads (challenge/proof → instant, or a session) → PUT the
 * missing chunks with bounded parallelism and retries → complete. Knows nothing of the UI: read
 * `snapshot()` and listen to `state` / `progress` events.
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
  readonly #speed: SpeedMeter;

  #state: UploadState = 'queued';
  #ctl: AbortController | null = null;
  #hasherPromise: Promise<Hasher> | null = null;
  #deferred: Deferred<FileEntry> | null = null;

  #sha1: string | null;
  #sha1Trusted: boolean; // computed by us in this run (false: from the resume store / option)
  #digest: FileDigest | null = null;
  #uploadId: string | null = null;
  #session: UploadSession | null = null;
  #received = new Set<number>();
  #file: FileEntry | null = null;
  #error: UploadErrorInfo | null = null;
  #instant = false;

  #bytesHashed = 0;
  #confirmedBytes = 0;
  #inflight = new Map<number, number>();
  #sentDone = 0;
  #transferred = 0; // monotonic: feeds the speed meter
  #retries = 0;
  #lastEmit = Number.NEGATIVE_INFINITY;

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
    this.#speed = new SpeedMeter(options.speedWindowMs ?? 5000);
    this.#sha1 = options.sha1?.toLowerCase() ?? null;
    this.#sha1Trusted = false;
    if (this.#sha1) this.#bytesHashed = source.size;
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
    const inflight = this.#inflightBytes();
    const size = this.source.size;
    const bytesUploaded = this.#state === 'done' ? size : Math.min(size, this.#confirmedBytes + inflight);
    let speed = 0;
    let eta: number | null = null;
    const now = this.#now();
    if (this.#state === 'hashing') {
      speed = this.#speed.speed(now);
      eta = etaSeconds(size - this.#bytesHashed, speed);
    } else if (this.#state === 'uploading' || this.#state === 'completing') {
      speed = this.#speed.speed(now);
      eta = etaSeconds(size - bytesUploaded, speed);
    } else if (this.#state === 'done') {
      eta = 0;
    }
    return {
      id: this.id,
      name: this.name,
      size,
      parentId: this.parentId,
      state: this.#state,
      bytesHashed: this.#bytesHashed,
      bytesUploaded,
      sentBytes: this.#sentDone + inflight,
      speed,
      eta,
      instant: this.#instant,
      sha1: this.#sha1,
      uploadId: this.#uploadId,
      chunkSize: this.#session?.chunkSize ?? null,
      chunkCount: this.#session?.chunkCount ?? null,
      chunksDone: this.#received.size,
      retries: this.#retries,
      file: this.#file,
      error: this.#error,
    };
  }

  // ---- internals ----

  #inflightBytes(): number {
    let n = 0;
    for (const v of this.#inflight.values()) n += v;
    return n;
  }

  #abortRun(reason: unknown): void {
    const ctl = this.#ctl;
    this.#ctl = null;
    ctl?.abort(reason);
    this.#inflight.clear();
  }

  #setState(to: UploadState, ctl?: AbortController): void {
    if (ctl && (ctl !== this.#ctl || ctl.signal.aborted)) throw ctl.signal.reason;
    const from = this.#state;
    if (from === to) return;
    if (!canTransition(from, to)) throw new Error(`upload ${this.id}: invalid transition ${from} → ${to}`);
    this.#state = to;
    if (ACTIVE_STATES.has(to)) this.#speed.reset();
    this.#lastEmit = this.#now();
    this.#events.emit('state', this.snapshot(), from);
  }

  #progress(force = false): void {
    const now = this.#now();
    if (this.#state === 'hashing') this.#speed.add(now, this.#bytesHashed);
    else this.#speed.add(now, this.#transferred);
    if (!force && now - this.#lastEmit < (this.#o.progressIntervalMs ?? 100)) return;
    this.#lastEmit = now;
    this.#events.emit('progress', this.snapshot());
  }

  #hasher(): Promise<Hasher> {
    this.#hasherPromise ??= Promise.resolve(this.#o.hasher ?? createHasher());
    return this.#hasherPromise;
  }

  #retry<T>(operation: string, fn: () => Promise<T>, signal: AbortSignal): Promise<T> {
    return withRetry(fn, {
      delays: this.#o.retryDelays ?? DEFAULT_RETRY_DELAYS,
      signal,
      sleep: this.#sleep,
      onRetry: (err, ctx, delayMs) => {
        this.#retries++;
        this.#events.emit('retry', { operation, error: errorInfo(err), failures: ctx.failures, delayMs });
      },
    });
  }

  #resumeEntry(): ResumeEntry {
    return {
      sha1: this.#sha1!,
      uploadId: this.#uploadId,
      size: this.source.size,
      name: this.name,
      savedAt: Date.now(),
    };
  }

  async #run(): Promise<void> {
    const ctl = new AbortController();
    this.#ctl = ctl;
    this.#inflight.clear();
    try {
      for (let restarts = 0; ; restarts++) {
        try {
          await this.#attempt(ctl);
          return;
        } catch (err) {
          if (ctl.signal.aborted || restarts >= 3) throw err;
          if (err instanceof SessionLost) {
            this.#session = null;
            this.#uploadId = null;
            continue;
          }
          if (err instanceof StaleSha1) {
            await this.#o.resumeStore?.delete(this.#fingerprint).catch(() => {});
            this.#sha1 = null;
            this.#digest = null;
            this.#session = null;
            this.#uploadId = null;
            this.#bytesHashed = 0;
            continue;
          }
          throw err;
        }
      }
    } catch (err) {
      if (ctl !== this.#ctl || ctl.signal.aborted) return; // paused or canceled meanwhile
      this.#ctl = null;
      this.#inflight.clear();
      const error = err instanceof Error ? err : new Error(errorMessage(err));
      this.#error = errorInfo(error);
      this.#setState('error');
      this.#deferred?.reject(error);
      this.#deferred = null;
      this.#events.emit('error', error, this.snapshot());
    }
  }

  async #attempt(ctl: AbortController): Promise<void> {
    if (!this.#sha1) await this.#hashPhase(ctl);
    await this.#checkPhase(ctl);
    if (!this.#file) {
      await this.#uploadPhase(ctl);
      await this.#completePhase(ctl);
    }
    // done
    this.#setState('done', ctl);
    this.#ctl = null;
    await this.#o.resumeStore?.delete(this.#fingerprint).catch(() => {});
    const file = this.#file!;
    this.#deferred?.resolve(file);
    this.#deferred = null;
    this.#events.emit('done', file, this.snapshot());
  }

  async #hashPhase(ctl: AbortController): Promise<void> {
    const { signal } = ctl;
    const store = this.#o.resumeStore;
    if (store) {
      const entry = await store.get(this.#fingerprint).catch(() => null);
      signal.throwIfAborted();
      if (entry && entry.size === this.source.size && /^[0-9a-f]{40}$/.test(entry.sha1)) {
        this.#sha1 = entry.sha1;
        this.#sha1Trusted = false;
        this.#uploadId = entry.uploadId;
        this.#bytesHashed = this.source.size;
        return;
      }
    }
    const release = await this.#o.hashLimiter?.acquire(signal);
    try {
      this.#setState('hashing', ctl);
      this.#bytesHashed = 0;
      this.#progress(true);
      const digest = await this.#hashFile(this.source, {
        pieceSize: HASH_PIECE_SIZE,
        signal,
        onProgress: (n) => {
          if (signal.aborted) return;
          this.#bytesHashed = n;
          this.#progress();
        },
      });
      signal.throwIfAborted();
      this.#digest = digest;
      this.#sha1 = digest.sha1;
      this.#sha1Trusted = true;
      this.#bytesHashed = this.source.size;
    } finally {
      release?.();
    }
    await store?.set(this.#fingerprint, this.#resumeEntry()).catch(() => {});
  }

  async #checkPhase(ctl: AbortController): Promise<void> {
    const { signal } = ctl;
    const t = this.#o.transport;
    this.#setState('checking', ctl);
    let session: UploadSession | null = null;
    if (this.#uploadId) {
      // resuming: the server is the authority on which chunks it holds
      try {
        const s = await this.#retry('get upload', () => t.getUpload(this.#uploadId!, { signal }), signal);
        if (s.sha1 === this.#sha1 && s.size === this.source.size) session = s;
      } catch (err) {
        if (!isGone(err)) throw err;
      }
      if (!session) this.#uploadId = null;
    }
    if (!session) {
      let proof: Proof | undefined;
      let challenges = 0;
      for (;;) {
        const body: CreateUploadBody = {
          name: this.name,
          size: this.source.size,
          sha1: this.#sha1!,
          ...(this.parentId !== null ? { parentId: this.parentId } : {}),
          ...(proof ? { proof } : {}),
        };
        let res: CreateUploadResponse;
        try {
          res = await this.#retry('create upload', () => t.createUpload(body, { signal }), signal);
        } catch (err) {
          // an expired or consumed challenge: ask for a fresh one
          if (proof && err instanceof ApiError && err.code === 'proof_failed' && challenges < 2) {
            proof = undefined;
            continue;
          }
          throw err;
        }
        if (res.status === 'challenge') {
          if (++challenges > 3) throw new Error('the server keeps answering with challenges');
          const sha1 = await proveChallenge(this.source, res.challenge, await this.#hasher(), signal);
          proof = { challengeId: res.challenge.id, sha1 };
          continue;
        }
        if (res.status === 'instant') {
          signal.throwIfAborted();
          this.#file = res.file;
          this.#instant = true;
          return;
        }
        const { status: _status, ...rest } = res;
        session = rest;
        break;
      }
    }
    signal.throwIfAborted();
    this.#session = session;
    this.#uploadId = session.uploadId;
    this.#received = new Set(session.receivedChunks);
    this.#confirmedBytes = bytesOfChunks(session.size, session.chunkSize, this.#received);
    await this.#o.resumeStore?.set(this.#fingerprint, this.#resumeEntry()).catch(() => {});
  }

  async #uploadPhase(ctl: AbortController): Promise<void> {
    const { signal } = ctl;
    const session = this.#session!;
    this.#setState('uploading', ctl);
    this.#progress(true);
    const todo = missingChunks(session.chunkCount, this.#received);
    if (todo.length === 0) return;
    // siblings stop at the first failure; a pause/cancel reaches them through `signal`
    const group = new AbortController();
    const onAbort = () => group.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let failure: { err: unknown } | null = null;
    const lane = async () => {
      for (let index = todo.shift(); index !== undefined; index = todo.shift()) {
        try {
          await this.#sendChunk(ctl, group.signal, session, index);
        } catch (err) {
          if (!failure) {
            failure = { err };
            group.abort(err);
          }
          return;
        }
      }
    };
    const lanes = Math.max(1, Math.min(this.#o.parallelism ?? 4, todo.length));
    try {
      await Promise.all(Array.from({ length: lanes }, lane));
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    signal.throwIfAborted();
    if (failure) throw (failure as { err: unknown }).err;
  }

  #setInflight(ctl: AbortController, index: number, loaded: number): void {
    if (ctl.signal.aborted) return;
    const prev = this.#inflight.get(index) ?? 0;
    if (loaded > prev) this.#transferred += loaded - prev;
    this.#inflight.set(index, loaded);
    this.#progress();
  }

  async #sendChunk(ctl: AbortController, signal: AbortSignal, session: UploadSession, index: number) {
    const release = await this.#o.requestLimiter?.acquire(signal);
    try {
      const { start, end } = chunkRange(session.size, session.chunkSize, index);
      const bytes = await readExact(this.source, start, end); // at most `parallelism` of these live
      signal.throwIfAborted();
      const md5 = precomputedMd5(this.#digest, session.chunkSize, index) ?? (await this.#hasher()).md5(bytes);
      const md5Base64 = hexToBase64(md5);
      await this.#retry(
        `chunk ${index}`,
        async () => {
          this.#inflight.set(index, 0);
          await this.#o.transport.putChunk(session.uploadId, index, bytes, md5Base64, {
            signal,
            onProgress: (loaded) => this.#setInflight(ctl, index, loaded),
          });
        },
        signal,
      );
      if (ctl.signal.aborted) return;
      this.#setInflight(ctl, index, bytes.byteLength);
      this.#inflight.delete(index);
      if (!this.#received.has(index)) {
        this.#received.add(index);
        this.#confirmedBytes += bytes.byteLength;
      }
      this.#sentDone += bytes.byteLength;
      this.#progress(true);
    } catch (err) {
      this.#inflight.delete(index);
      if (isGone(err)) throw new SessionLost(errorMessage(err));
      throw err;
    } finally {
      release?.();
    }
  }

  async #completePhase(ctl: AbortController): Promise<void> {
    const { signal } = ctl;
    const session = this.#session!;
    this.#setState('completing', ctl);
    for (let round = 0; ; round++) {
      try {
        const res = await this.#retry(
          'complete',
          () => this.#o.transport.completeUpload(session.uploadId, { signal }),
          signal,
        );
        signal.throwIfAborted();
        this.#file = res.file;
        return;
      } catch (err) {
        if (signal.aborted) throw err;
        if (err instanceof ApiError && err.code === 'upload_busy') {
          // another request (a retry of ours, another tab) is completing it: ask again shortly
          const seconds = Number(err.details.retryAfter ?? 1);
          await this.#sleep(Math.min(30, Math.max(1, seconds)) * 1000, signal);
          continue;
        }
        if (err instanceof ApiError && err.code === 'incomplete' && round < 2) {
          // the server lost or never got some chunks: send them again
          const missing = Array.isArray(err.details.missing) ? (err.details.missing as number[]) : [];
          for (const i of missing) this.#received.delete(i);
          this.#confirmedBytes = bytesOfChunks(session.size, session.chunkSize, this.#received);
          await this.#uploadPhase(ctl);
          this.#setState('completing', ctl);
          continue;
        }
        if (err instanceof ApiError && err.code === 'hash_mismatch') {
          if (!this.#sha1Trusted) throw new StaleSha1(err.message);
          throw new ApiError(
            err.status,
            err.code,
            `${this.name}: the server computed another SHA-1 than the one hashed here (did the file change during the upload?)`,
            err.details,
          );
        }
        if (isGone(err)) throw new SessionLost(errorMessage(err));
        throw err;
      }
    }
  }
}
