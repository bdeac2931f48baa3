import { etaSeconds, SpeedMeter } from './speed.ts';
import type { UploadState } from './state.ts';
import type { UploadSnapshot } from './types.ts';

/** The byte-counting part of a snapshot (the fields and their meaning live in `UploadSnapshot`). */
export type ProgressView = Pick<
  UploadSnapshot,
  | 'bytesHashed'
  | 'hashing'
  | 'hashMs'
  | 'bytesUploaded'
  | 'sentBytes'
  | 'speed'
  | 'hashSpeed'
  | 'eta'
  | 'verifying'
  | 'retries'
>;

export interface ProgressOptions {
  size: number;
  now: () => number;
  speedWindowMs: number;
  /** Minimum ms between throttled emits. */
  intervalMs: number;
  /** Called to emit a `progress` event (the owner builds the snapshot). */
  emit: () => void;
}

/**
 * Progress accounting of one upload, apart from the protocol: bytes hashed and sent, bytes the
 * server holds, in-flight chunk progress, two speed meters (hashing and sending run at the same
 * time in a speculative upload) and the throttling of `progress` events. Knows nothing of HTTP.
 */
export class UploadProgress {
  readonly #o: ProgressOptions;
  readonly #hashSpeed: SpeedMeter;
  readonly #sendSpeed: SpeedMeter;

  #bytesHashed = 0;
  #hashRuns = 0; // hashes running now (0 or 1; a counter so an aborted one cannot clear a new one)
  #hashMs: number | null = null;
  #hashStartedAt: number | null = null;
  #confirmed = 0;
  readonly #inflight = new Map<number, number>();
  #sentDone = 0;
  #transferred = 0; // monotonic: feeds the send meter
  #verifying = false;
  #retries = 0;
  #lastEmit = Number.NEGATIVE_INFINITY;

  constructor(options: ProgressOptions) {
    this.#o = options;
    this.#hashSpeed = new SpeedMeter(options.speedWindowMs);
    this.#sendSpeed = new SpeedMeter(options.speedWindowMs);
  }

  get bytesHashed(): number {
    return this.#bytesHashed;
  }
  get hashing(): boolean {
    return this.#hashRuns > 0;
  }

  // ---- hashing ----

  /** The SHA-1 is known without hashing (option, resume store). */
  hashKnown(): void {
    this.#bytesHashed = this.#o.size;
  }
  /** A hash of the whole file starts; returns the function to call when it stops (done or not). */
  hashStarted(): (finished: boolean) => void {
    this.#hashRuns++;
    this.#bytesHashed = 0;
    this.#hashSpeed.reset();
    const started = this.#o.now();
    this.#hashStartedAt = started;
    let stopped = false;
    return (finished) => {
      if (stopped) return;
      stopped = true;
      this.#hashRuns--;
      this.#hashMs = (this.#hashMs ?? 0) + (this.#o.now() - started);
      if (this.#hashStartedAt === started) this.#hashStartedAt = null;
      if (finished) this.#bytesHashed = this.#o.size;
      this.tick(true);
    };
  }
  hashed(bytes: number): void {
    this.#bytesHashed = bytes;
    this.tick();
  }
  /** Forget an earlier SHA-1 (it was stale): hashing starts over. */
  resetHash(): void {
    this.#bytesHashed = 0;
  }

  // ---- sending ----

  /** Bytes the server holds (its chunk list, or everything after a one-request upload). */
  setConfirmed(bytes: number): void {
    this.#confirmed = bytes;
  }
  /** Bytes of chunk `index` sent so far in the current request. */
  chunkProgress(index: number, loaded: number): void {
    const prev = this.#inflight.get(index) ?? 0;
    if (loaded > prev) this.#transferred += loaded - prev;
    this.#inflight.set(index, loaded);
    this.tick();
  }
  /** Chunk `index` (`bytes` long) is stored; `fresh` when the server did not count it before. */
  chunkDone(index: number, bytes: number, fresh: boolean): void {
    const prev = this.#inflight.get(index) ?? 0;
    if (bytes > prev) this.#transferred += bytes - prev;
    this.#inflight.delete(index);
    if (fresh) this.#confirmed += bytes;
    this.#sentDone += bytes;
    this.tick(true);
  }
  chunkDropped(index: number): void {
    this.#inflight.delete(index);
  }
  clearInflight(): void {
    this.#inflight.clear();
  }
  /** A whole file went up in one request. */
  sentWhole(bytes: number): void {
    this.#transferred += bytes;
    this.#sentDone += bytes;
    this.#confirmed = bytes;
    this.tick(true);
  }

  setVerifying(on: boolean): void {
    if (this.#verifying === on) return;
    this.#verifying = on;
    this.tick(true);
  }
  retried(): void {
    this.#retries++;
  }

  /** Sending (re)starts: its speed starts from scratch (a hash keeps its own meter). */
  resetSendSpeed(): void {
    this.#sendSpeed.reset();
  }
  markEmitted(): void {
    this.#lastEmit = this.#o.now();
  }

  /** Samples the meters and emits unless an emit happened less than `intervalMs` ago. */
  tick(force = false): void {
    const now = this.#o.now();
    this.#hashSpeed.add(now, this.#bytesHashed);
    this.#sendSpeed.add(now, this.#transferred);
    if (!force && now - this.#lastEmit < this.#o.intervalMs) return;
    this.#lastEmit = now;
    this.#o.emit();
  }

  view(state: UploadState): ProgressView {
    const size = this.#o.size;
    let inflight = 0;
    for (const v of this.#inflight.values()) inflight += v;
    const bytesUploaded = state === 'done' ? size : Math.min(size, this.#confirmed + inflight);
    const now = this.#o.now();
    const hashing = this.hashing;
    const hashSpeed = hashing ? this.#hashSpeed.speed(now) : 0;
    const sendSpeed = this.#sendSpeed.speed(now);
    let speed = 0;
    let eta: number | null = null;
    if (state === 'hashing') {
      speed = hashSpeed;
      eta = etaSeconds(size - this.#bytesHashed, hashSpeed);
    } else if (state === 'uploading' || state === 'completing') {
      speed = sendSpeed;
      // Every byte sent and the server verifying them: "0 s left" would be a promise nobody keeps.
      const unsent = size - bytesUploaded;
      eta = state === 'completing' && unsent <= 0 ? null : etaSeconds(unsent, sendSpeed);
      if (hashing) {
        // a speculative upload is done when both are
        const hashEta = etaSeconds(size - this.#bytesHashed, hashSpeed);
        eta = eta === null || hashEta === null ? null : Math.max(eta, hashEta);
      }
    } else if (state === 'done') {
      eta = 0;
    }
    let hashMs = this.#hashMs;
    if (this.#hashStartedAt !== null) hashMs = (hashMs ?? 0) + (now - this.#hashStartedAt);
    return {
      bytesHashed: this.#bytesHashed,
      hashing,
      hashMs,
      bytesUploaded,
      sentBytes: this.#sentDone + inflight,
      speed,
      hashSpeed,
      eta,
      verifying: this.#verifying,
      retries: this.#retries,
    };
  }
}
