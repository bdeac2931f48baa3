import { HashWorkerError } from '../errors.ts';
import { ownedBytes } from '../util/bytes.ts';
import { pieceCount, readExact } from './hash-file.ts';
import type { FileDigest, FileSource, HashFileFn, HashFileOptions } from './types.ts';
import { HASH_PIECE_SIZE } from './types.ts';
import type {
  HashWorkerRequest,
  HashWorkerResponse,
  MessageEventLike,
  PieceInput,
} from './worker-protocol.ts';

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
  resolve(res: Reply): void;
  reject(err: Error): void;
}

/**
 * A sensible pool size: one SHA-1 worker plus 1–2 workers that read pieces and take their CRCs.
 * On two idle cores two workers beat one: the SHA-1 worker then does nothing but SHA-1, the one
 * thing that cannot be split. The page hashes while the user waits, so favour the idle case.
 */
export function defaultHashWorkerCount(): number {
  const cores = typeof navigator !== 'undefined' ? (navigator.hardwareConcurrency ?? 2) : 2;
  return Math.min(3, Math.max(2, cores - 1));
}

type Reply = HashWorkerResponse & { ok: true };

/**
 * Hashes files across web workers. With one worker it reads each piece, feeds the file's SHA-1
 * and takes the piece's CRC-32C. With more, worker 0 keeps the SHA-1 while the others read the
 * pieces and take their CRCs in parallel, then hand the bytes on (transferred, never copied).
 * A piece of a Blob-backed source travels as a Blob slice and is read in a worker: the calling
 * thread never holds the bytes. Use `pool.hashFile` as the engine's `hashFile` option.
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

  /** The least busy worker, from `from` on (1: spare worker 0, the SHA-1 worker, when there are others). */
  #leastLoaded(from = 0): Slot {
    const slots = this.#slots.length > from ? this.#slots.slice(from) : this.#slots;
    let slot = slots[0]!;
    for (const s of slots) if (s.load < slot.load) slot = s;
    return slot;
  }

  /**
   * The SHA-1 of a small Blob, read and hashed in the least busy worker. Blobs reach a worker by
   * reference, so a folder of small files costs the page's thread a message per file.
   */
  async sha1OfBlob(blob: Blob): Promise<string> {
    const r = await this.#call(this.#leastLoaded(), { op: 'sha1-blob', id: this.#nextId++, blob });
    return r.sha1!;
  }

  /** An instant-upload proof, SHA-1(UTF-8 `nonce` ‖ the bytes of `range`), taken in a worker. */
  async proofOfBlob(nonce: string, range: Blob): Promise<string> {
    const msg = { op: 'sha1-blob' as const, id: this.#nextId++, blob: range, prefix: nonce };
    const r = await this.#call(this.#leastLoaded(), msg);
    return r.sha1!;
  }

  /**
   * The CRC-32C of a Blob (a chunk about to be sent as it is), read in a worker other than the
   * SHA-1 one where there is one.
   */
  async crc32cOfBlob(blob: Blob): Promise<number> {
    const r = await this.#call(this.#leastLoaded(1), { op: 'crc', id: this.#nextId++, blob });
    return r.crc32c!;
  }

  #call(slot: Slot, msg: HashWorkerRequest & { id: number }, transfer: Transferable[] = []) {
    return new Promise<Reply>((resolve, reject) => {
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

  async #hashFile(source: FileSource, options: HashFileOptions = {}): Promise<FileDigest> {
    const pieceSize = options.pieceSize ?? HASH_PIECE_SIZE;
    const { signal, onProgress, onPiece } = options;
    signal?.throwIfAborted();
    if (this.#broken) throw this.#broken;
    const job = this.#nextJob++;
    const sha1Slot = this.#slots[0]!;
    const alone = this.#slots.length === 1;
    sha1Slot.worker.postMessage({ op: 'sha1-start', job }, []);
    const count = pieceCount(source.size, pieceSize);
    const crcs = new Array<number>(count);
    const inFlight = new Set<Promise<void>>();
    let firstError: unknown = null;
    let hashed = 0;
    // With CRC workers, pieces reach the SHA-1 worker in file order whatever order their CRCs
    // finish in: each is posted once the one before it was.
    let posted: Promise<unknown> = Promise.resolve();
    try {
      for (let i = 0; i < count; i++) {
        while (inFlight.size >= this.#maxInFlight) await Promise.race(inFlight);
        if (firstError) throw firstError;
        signal?.throwIfAborted();
        const start = i * pieceSize;
        const end = Math.min(source.size, start + pieceSize);
        const piece = await this.#pieceInput(source, start, end);
        const transfer = piece.data ? [piece.data.buffer] : [];
        const gotCrc = (crc: number) => {
          crcs[i] = crc;
          onPiece?.(i, crc);
        };
        let done: Promise<unknown>;
        if (alone) {
          const id = this.#nextId++;
          done = this.#call(sha1Slot, { op: 'sha1-update', id, job, crc: true, ...piece }, transfer).then(
            (r) => gotCrc(r.crc32c!),
          );
        } else {
          const id = this.#nextId++;
          const crcDone = this.#call(this.#leastLoaded(1), { op: 'crc', id, back: true, ...piece }, transfer);
          const sha1Posted = Promise.all([posted, crcDone]).then(([, r]) => {
            gotCrc(r.crc32c!);
            const data = r.data as Uint8Array<ArrayBuffer>;
            return {
              sent: this.#call(sha1Slot, { op: 'sha1-update', id: this.#nextId++, job, data }, [data.buffer]),
            };
          });
          posted = sha1Posted;
          done = sha1Posted.then((p) => p.sent);
        }
        const p: Promise<void> = done.then(
          () => {
            hashed += end - start;
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
      return { sha1: r.sha1!, pieceSize, pieceCrc32cs: crcs };
    } catch (err) {
      if (!this.#broken) sha1Slot.worker.postMessage({ op: 'sha1-drop', job }, []);
      throw err;
    }
  }

  /** A Blob slice for a worker to read, or (no Blob behind the source) the bytes, read here. */
  async #pieceInput(source: FileSource, start: number, end: number): Promise<PieceInput> {
    if (source.blob && source.blob.size === source.size) return { blob: source.blob.slice(start, end) };
    return { data: ownedBytes(await readExact(source, start, end)) };
  }
}
