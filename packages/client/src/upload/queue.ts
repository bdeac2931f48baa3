import type { FileEntry, OnConflict } from '@dfs/shared';
import { Emitter } from '../emitter.ts';
import type { FileSource } from '../hashing/types.ts';
import { SmallFileBatcher } from './batcher.ts';
import type { FolderIndex } from './existing.ts';
import { Limiter } from './limiter.ts';
import { etaSeconds, TransferRate } from './speed.ts';
import { ACTIVE_STATES, FINAL_STATES, type UploadState } from './state.ts';
import type { NameTakenHandler } from './types.ts';
import { Upload, type UploadOptions, type UploadSnapshot } from './upload.ts';

export interface UploadQueueOptions extends Omit<UploadOptions, 'parentId' | 'name' | 'sha1' | 'id'> {
  /** Files uploading at once; default 2 (one can hash while another sends). */
  concurrency?: number;
  /**
   * Small files (one request each, see `smallFileLimit`) uploading at once, on top of
   * `concurrency`; default 64 when the transport takes batches (they share requests), else 8.
   * Many small files are bound by round trips, not bytes.
   */
  smallConcurrency?: number;
  /** Send small files in `POST /api/files/batch` requests when the transport can; default true. */
  batch?: boolean;
  /** Files hashing at once (CPU-bound); default 1. */
  hashConcurrency?: number;
  /** Chunk requests in flight across all files (and chunks in memory); default 6. */
  requestConcurrency?: number;
  /** Start files as soon as they are added; default true. */
  autoStart?: boolean;
}

export interface AddOptions {
  parentId?: string | null;
  name?: string;
  sha1?: string;
  /** See `UploadOptions.skipIdentical`. */
  skipIdentical?: FolderIndex;
  /** See `UploadOptions.onConflict`. */
  onConflict?: OnConflict;
  /** See `UploadOptions.onNameTaken`. */
  onNameTaken?: NameTakenHandler;
}

export interface QueueTotals {
  files: number;
  queued: number;
  active: number;
  paused: number;
  done: number;
  failed: number;
  canceled: number;
  /** Sums over files that are not canceled. */
  bytesTotal: number;
  bytesHashed: number;
  bytesUploaded: number;
  sentBytes: number;
  /**
   * Bytes/s sent: the one running file's own speed when one file is sending, else the rate of
   * bytes sent across all files (see `TransferRate`; the sum of per-file speeds without one).
   */
  speed: number;
  /**
   * Seconds until every pending file is done, null when unknown. Never less than a running
   * file's own `eta` (with one file pending, exactly its `eta`), and it counts a hash still
   * running after the bytes went up.
   */
  eta: number | null;
  /** Files finished without sending bytes. */
  instant: number;
  /** Files not sent because the folder already held them (name, size and SHA-1). */
  skipped: number;
}

export type UploadQueueEvents = {
  added: (upload: Upload) => void;
  removed: (id: string) => void;
  state: (snapshot: UploadSnapshot, previous: UploadState) => void;
  progress: (snapshot: UploadSnapshot) => void;
  done: (file: FileEntry, snapshot: UploadSnapshot) => void;
  error: (error: Error, snapshot: UploadSnapshot) => void;
  /** Aggregate numbers changed (after every state or progress event). */
  totals: (totals: QueueTotals) => void;
  /** Nothing queued or running any more. */
  idle: () => void;
};

/** Several uploads with a global concurrency, shared request/hash slots and aggregate totals. */
export class UploadQueue {
  readonly #o: UploadQueueOptions;
  readonly #uploads = new Map<string, Upload>();
  readonly #running = new Set<Upload>();
  readonly #events = new Emitter<UploadQueueEvents>();
  readonly #unsubscribe = new Map<string, () => void>();
  readonly requestLimiter: Limiter;
  readonly hashLimiter: Limiter;
  /** Shared by the small files of this queue; none when the transport cannot take batches. */
  readonly batcher: SmallFileBatcher | undefined;
  #concurrency: number;
  #smallConcurrency: number;
  #autoStart: boolean;
  #pumping = false;
  #pumpAgain = false;
  readonly #rate = new TransferRate();
  readonly #now: () => number;

  constructor(options: UploadQueueOptions) {
    this.#o = options;
    this.#concurrency = Math.max(1, options.concurrency ?? 2);
    const { transport } = options;
    if (options.batch !== false && transport.uploadBatch) {
      this.batcher = new SmallFileBatcher(transport);
    }
    this.#smallConcurrency = Math.max(1, options.smallConcurrency ?? (this.batcher ? 64 : 8));
    this.#autoStart = options.autoStart ?? true;
    this.#now = options.now ?? (() => Date.now());
    this.requestLimiter = options.requestLimiter ?? new Limiter(options.requestConcurrency ?? 6);
    this.hashLimiter = options.hashLimiter ?? new Limiter(options.hashConcurrency ?? 1);
  }

  on<K extends keyof UploadQueueEvents>(event: K, listener: UploadQueueEvents[K]): () => void {
    return this.#events.on(event, listener);
  }
  off<K extends keyof UploadQueueEvents>(event: K, listener: UploadQueueEvents[K]): void {
    this.#events.off(event, listener);
  }

  get concurrency(): number {
    return this.#concurrency;
  }
  set concurrency(n: number) {
    this.#concurrency = Math.max(1, n);
    this.#pump();
  }
  get smallConcurrency(): number {
    return this.#smallConcurrency;
  }
  set smallConcurrency(n: number) {
    this.#smallConcurrency = Math.max(1, n);
    this.#pump();
  }

  add(source: FileSource, options: AddOptions = {}): Upload {
    const {
      concurrency: _c,
      smallConcurrency: _s,
      hashConcurrency: _h,
      requestConcurrency: _r,
      autoStart: _a,
      batch: _b,
      ...base
    } = this.#o;
    const upload = new Upload(source, {
      ...base,
      ...options,
      requestLimiter: this.requestLimiter,
      hashLimiter: this.hashLimiter,
      ...(this.batcher ? { batcher: this.batcher } : {}),
    });
    this.#uploads.set(upload.id, upload);
    upload.onRequeue = () => this.#pump();
    const offs = [
      upload.on('state', (snap, prev) => {
        if (snap.state !== 'queued' && !ACTIVE_STATES.has(snap.state)) this.#running.delete(upload);
        this.#events.emit('state', snap, prev);
        this.#emitTotals();
        this.#pump();
      }),
      upload.on('progress', (snap) => {
        this.#events.emit('progress', snap);
        this.#emitTotals();
      }),
      upload.on('done', (file, snap) => this.#events.emit('done', file, snap)),
      upload.on('error', (err, snap) => this.#events.emit('error', err, snap)),
    ];
    this.#unsubscribe.set(upload.id, () => {
      for (const off of offs) off();
    });
    this.#events.emit('added', upload);
    this.#emitTotals();
    this.#pump();
    return upload;
  }

  get(id: string): Upload | undefined {
    return this.#uploads.get(id);
  }
  list(): Upload[] {
    return [...this.#uploads.values()];
  }
  snapshots(): UploadSnapshot[] {
    return this.list().map((u) => u.snapshot());
  }

  /** Starts queued files (when `autoStart` was false). */
  start(): void {
    this.#autoStart = true;
    this.#pump();
  }
  pauseAll(): void {
    for (const u of this.#uploads.values()) u.pause();
  }
  resumeAll(): void {
    this.#autoStart = true;
    for (const u of this.#uploads.values()) if (u.state === 'paused') u.resume();
  }
  retryFailed(): void {
    for (const u of this.#uploads.values()) if (u.state === 'error') u.retry();
  }
  async cancelAll(): Promise<void> {
    await Promise.all([...this.#uploads.values()].map((u) => u.cancel()));
  }
  /** Cancels the upload if unfinished and forgets it. */
  async remove(id: string): Promise<void> {
    const u = this.#uploads.get(id);
    if (!u) return;
    await u.cancel();
    this.#forget(u);
    this.#emitTotals();
    this.#pump();
  }
  /** Forgets done and canceled uploads. */
  clearFinished(): void {
    for (const u of this.#uploads.values()) if (FINAL_STATES.has(u.state)) this.#forget(u);
    this.#emitTotals();
  }

  /** Resolves when nothing is queued or running (paused and failed files do not count). */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => {
      this.#events.once('idle', () => resolve());
    });
  }

  totals(): QueueTotals {
    const snapshots = Array.from(this.#uploads.values(), (u) => u.snapshot());
    return totalsOf(snapshots, { rate: this.#rate.sample(snapshots, this.#now()) });
  }

  #forget(u: Upload): void {
    this.#unsubscribe.get(u.id)?.();
    this.#unsubscribe.delete(u.id);
    this.#uploads.delete(u.id);
    this.#running.delete(u);
    this.#events.emit('removed', u.id);
  }

  #isIdle(): boolean {
    if (this.#running.size > 0) return false;
    for (const u of this.#uploads.values()) if (u.state === 'queued' && this.#autoStart) return false;
    return true;
  }

  /** Totals snapshot every upload: O(n) per progress event, so only when someone listens. */
  #emitTotals(): void {
    if (this.#events.has('totals')) this.#events.emit('totals', this.totals());
  }

  /**
   * Starts queued files in order: small ones (one request each) up to `smallConcurrency`, the
   * others up to `concurrency`, so a folder of tiny files never waits behind a big one.
   */
  #pump(): void {
    // Starting an upload can emit a state change synchronously, which pumps again: run once more
    // instead of nesting (the counts below would be stale).
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        this.#startQueued();
      } while (this.#pumpAgain);
    } finally {
      this.#pumping = false;
    }
    if (this.#isIdle()) this.#events.emit('idle');
  }

  #startQueued(): void {
    if (this.#autoStart) {
      let small = 0;
      let large = 0;
      for (const u of this.#running) {
        if (u.route === 'small') small++;
        else large++;
      }
      for (const u of this.#uploads.values()) {
        if (small >= this.#smallConcurrency && large >= this.#concurrency) break;
        if (u.state !== 'queued' || this.#running.has(u)) continue;
        const isSmall = u.route === 'small';
        if (isSmall ? small >= this.#smallConcurrency : large >= this.#concurrency) continue;
        if (isSmall) small++;
        else large++;
        this.#running.add(u);
        u.start();
      }
    }
  }
}

/**
 * Aggregate numbers over upload snapshots: what `UploadQueue#totals` reports, for a view that
 * already holds the snapshots (taking them again costs one object per file).
 */
export function totalsOf(snapshots: Iterable<UploadSnapshot>, options: { rate?: number } = {}): QueueTotals {
  const t: QueueTotals = {
    files: 0,
    queued: 0,
    active: 0,
    paused: 0,
    done: 0,
    failed: 0,
    canceled: 0,
    bytesTotal: 0,
    bytesHashed: 0,
    bytesUploaded: 0,
    sentBytes: 0,
    speed: 0,
    eta: null,
    instant: 0,
    skipped: 0,
  };
  let remaining = 0;
  let speedSum = 0;
  const sending: UploadSnapshot[] = [];
  const active: UploadSnapshot[] = [];
  for (const s of snapshots) {
    t.files++;
    if (s.state === 'queued') t.queued++;
    else if (ACTIVE_STATES.has(s.state)) t.active++;
    else if (s.state === 'paused') t.paused++;
    else if (s.state === 'done') t.done++;
    else if (s.state === 'error') t.failed++;
    else if (s.state === 'canceled') t.canceled++;
    if (s.state === 'canceled') continue;
    if (s.instant) t.instant++;
    if (s.skipped) t.skipped++;
    t.bytesTotal += s.size;
    t.bytesHashed += s.bytesHashed;
    t.bytesUploaded += s.bytesUploaded;
    t.sentBytes += s.sentBytes;
    if (s.state === 'uploading' || s.state === 'completing') {
      speedSum += s.speed;
      sending.push(s);
    }
    if (ACTIVE_STATES.has(s.state)) active.push(s);
    if (s.state !== 'error' && s.state !== 'paused' && s.state !== 'done')
      remaining += s.size - s.bytesUploaded;
  }
  // One big file sending: its own numbers, so the panel's line and the file's row agree.
  const single = sending.length === 1 && sending[0]!.route !== 'small';
  t.speed = single ? sending[0]!.speed : (options.rate ?? speedSum);
  t.eta = overallEta(active, t.queued > 0, remaining, t.speed);
  return t;
}

/**
 * When the pending files will all be done: the latest of the running files' own estimates
 * (a file still hashing before it sends also needs its bytes sent at `speed`), and, when more
 * than one file is pending, every remaining byte at `speed`.
 */
function overallEta(
  active: UploadSnapshot[],
  waiting: boolean,
  remaining: number,
  speed: number,
): number | null {
  if (active.length === 0 && !waiting) return remaining > 0 ? null : 0;
  let latest = 0;
  for (const s of active) {
    let eta = s.eta;
    const unsent = s.size - s.bytesUploaded;
    if (s.state === 'hashing' && unsent > 0 && eta !== null) {
      const send = etaSeconds(unsent, speed);
      eta = send === null ? null : eta + send;
    } else if (eta === null && s.state === 'completing' && unsent === 0) {
      continue; // the server checks what it received: no bytes left, no honest estimate either
    } else if (eta === null && s.route === 'small') {
      eta = etaSeconds(unsent, speed); // waiting in a batch: its bytes go at the shared rate
    }
    if (eta === null) return null;
    latest = Math.max(latest, eta);
  }
  // One file: its own estimate. Several share the line: every remaining byte at the shared speed.
  if (!waiting && active.length <= 1) return latest;
  const all = etaSeconds(remaining, speed);
  return all === null ? null : Math.max(latest, all);
}
