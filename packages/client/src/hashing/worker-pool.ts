import { HashWorkerError } from '../errors.ts';
import { ownedBytes } from '../util/bytes.ts';
import { pieceCount, readExact } from './hash-file.ts';
import type { FileDigest, FileSource, HashFileFn, HashFileOptions } from './types.ts';
import { HASH_PIECE_SIZE } from './types.ts';
import type { HashWorkerRequest, HashWorkerResponse, MessageEventLike } from './worker-protocol.ts';

/**
 * The part of a `Worker` the pool uses. A browser `new Worker(new URL('./hash.worker.ts',
 * import.meta.url), {type: 'module'})` fits, and so does a `MessagePort`.
 */
export interface WorkerLike {
  postMessage(message: HashWorkerRequest, transfer: Transferable[]): void;
  addEventListener(type: 'message', listener: (ev: MessageEventLike) => void): void;
  addEventListener(type: 'error', listener: (ev: { message?: string }) => void): void;
  terminate?(): void;
}

export interface WorkerHashPoolOptions {
  /** Pieces read but not yet hashed by every worker; bounds memory (default: workers + 2). */
  maxInFlight?: number;
}

interface Slot {
  worker: WorkerLike;
  load: number;
}

interface Waiter {
  resolve(res: HashWorkerResponse & { ok: true }): void;
  reject(err: Error): void;
}

/**
 * A sensible pool size: one SHA-1 worker plus 1–2 MD5 workers. On two idle cores two workers beat
 * one (299 vs 260 MB/s for 256 MiB in Chromium, pnpm bench); under heavy load from other
 * processes one was faster, but the page hashes while the user waits, so favour the idle case.
 */
export function defaultHashWorkerCount(): number {
  const cores = typeof navigator !== 'undefined' ? (navigator.hardwareConcurrency ?? 2) : 2;
  return Math.min(3, Math.max(2, cores - 1));
}

/**
 * Hashes files across web workers: worker 0 keeps the file's incremental SHA-1 while the
 * others compute piece MD5s in parallel (with one worker, it does both). Each piece is read
 * once on the calling thread; the SHA-1 worker gets a copy, the MD5 worker the transferred
 * original. Use `pool.hashFile` as the engine's `hashFile` option.
 */
export class WorkerHashPool {
  readonly #slots: Slot[];
  readonly #maxInFlight: number;
  readonly #waiters = new Map<number, Waiter>();
  #nextId = 1;
  #nextJob = 1;
  #broken: Error | null = null;

  constructor(workers: WorkerLike[], options: WorkerHashPoolOptions = {}) {
    if (workers.length === 0) throw new Error('WorkerHashPool needs at least one worker');
    this.#slots = workers.map((worker) => ({ worker, load: 0 }));
    this.#maxInFlight = options.maxInFlight ?? workers.length + 2;
    for (const { worker } of this.#slots) {
      worker.addEventListener('message', (ev) => this.#onMessage(ev.data as HashWorkerResponse));
      worker.addEventListener('error', (ev) =>
        this.#fail(new HashWorkerError(`hash worker failed: ${ev.message ?? 'error'}`)),
      );
      (worker as { start?: () => void }).start?.(); // MessagePort needs start() with addEventListener
    }
  }

  /** Creates `count` workers with `factory`. */
  static create(
    factory: () => WorkerLike,
    count = defaultHashWorkerCount(),
    options?: WorkerHashPoolOptions,
  ) {
    return new WorkerHashPool(
      Array.from({ length: count }, () => factory()),
      options,
    );
  }

  get size(): number {
    return this.#slots.length;
  }

  /** A `HashFileFn` bound to this pool. */
  readonly hashFile: HashFileFn = (source, options) => this.#hashFile(source, options);

  /** Terminates the workers; pending and later calls fail. */
  terminate(): void {
    this.#fail(new Error('hash pool terminated'));
    for (const { worker } of this.#slots) worker.terminate?.();
  }

  #fail(err: Error): void {
    this.#broken ??= err;
    for (const w of this.#waiters.values()) w.reject(err);
    this.#waiters.clear();
  }

  #onMessage(res: HashWorkerResponse): void {
    const w = this.#waiters.get(res.id);
    if (!w) return;
    this.#waiters.delete(res.id);
    if (res.ok) w.resolve(res);
    else w.reject(new Error(res.error));
  }

  /**
   * The SHA-1 of a small Blob, read and hashed in the least busy worker. Blobs reach a worker by
   * reference, so a folder of small files costs the page's thread a message per file.
   */
  async sha1OfBlob(blob: Blob): Promise<string> {
    let slot = this.#slots[0]!;
    for (const s of this.#slots) if (s.load < slot.load) slot = s;
    const r = await this.#call(slot, { op: 'sha1-blob', id: this.#nextId++, blob });
    return r.sha1!;
  }

  #call(slot: Slot, msg: HashWorkerRequest & { id: number }, transfer: Transferable[] = []) {
    return new Promise<HashWorkerResponse & { ok: true }>((resolve, reject) => {
      if (this.#broken) return reject(this.#broken);
      slot.load++;
      this.#waiters.set(msg.id, {
        resolve: (r) => {
          slot.load--;
          resolve(r);
        },
        reject: (e) => {
          slot.load--;
          reject(e);
        },
      });
      slot.worker.postMessage(msg, transfer);
    });
  }

  async #piece(job: number, bytes: Uint8Array<ArrayBuffer>): Promise<string> {
    const sha1Slot = this.#slots[0]!;
    if (this.#slots.length === 1) {
      const r = await this.#call(
        sha1Slot,
        { op: 'sha1-update', id: this.#nextId++, job, data: bytes, withMd5: true },
        [bytes.buffer],
      );
      return r.md5!;
    }
    // least-loaded MD5 worker
    let md5Slot = this.#slots[1]!;
    for (const s of this.#slots.slice(2)) if (s.load < md5Slot.load) md5Slot = s;
    const sha1Done = this.#call(sha1Slot, { op: 'sha1-update', id: this.#nextId++, job, data: bytes }); // copied
    const md5Done = this.#call(md5Slot, { op: 'md5', id: this.#nextId++, data: bytes }, [bytes.buffer]); // moved
    const [, r] = await Promise.all([sha1Done, md5Done]);
    return r.md5!;
  }

  async #hashFile(source: FileSource, options: HashFileOptions = {}): Promise<FileDigest> {
    const pieceSize = options.pieceSize ?? HASH_PIECE_SIZE;
    const { signal, onProgress } = options;
    signal?.throwIfAborted();
    if (this.#broken) throw this.#broken;
    const job = this.#nextJob++;
    const sha1Slot = this.#slots[0]!;
    sha1Slot.worker.postMessage({ op: 'sha1-start', job }, []);
    const count = pieceCount(source.size, pieceSize);
    const md5s = new Array<string>(count);
    const inFlight = new Set<Promise<void>>();
    let firstError: unknown = null;
    let hashed = 0;
    try {
      for (let i = 0; i < count; i++) {
        while (inFlight.size >= this.#maxInFlight) await Promise.race(inFlight);
        if (firstError) throw firstError;
        signal?.throwIfAborted();
        const start = i * pieceSize;
        const bytes = ownedBytes(await readExact(source, start, Math.min(source.size, start + pieceSize)));
        const length = bytes.byteLength; // read before the buffer is transferred
        const p: Promise<void> = this.#piece(job, bytes).then(
          (md5) => {
            md5s[i] = md5;
            hashed += length;
            onProgress?.(hashed);
            inFlight.delete(p);
          },
          (err: unknown) => {
            firstError ??= err;
            inFlight.delete(p);
          },
        );
        inFlight.add(p);
      }
      await Promise.all(inFlight);
      if (firstError) throw firstError;
      signal?.throwIfAborted();
      const r = await this.#call(sha1Slot, { op: 'sha1-digest', id: this.#nextId++, job });
      return { sha1: r.sha1!, pieceSize, pieceMd5s: md5s };
    } catch (err) {
      if (!this.#broken) sha1Slot.worker.postMessage({ op: 'sha1-drop', job }, []);
      throw err;
    }
  }
}
