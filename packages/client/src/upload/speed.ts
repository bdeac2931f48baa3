/**
 * Bytes per second as a moving average over about the last `windowMs`: feed it a monotonically
 * growing byte counter with timestamps. The oldest kept sample is the newest one at or before
 * the window's start, so speed = (bytes now − bytes then) / (now − then); while nothing new
 * arrives the value decays instead of freezing.
 */
export class SpeedMeter {
  readonly windowMs: number;
  #samples: { t: number; bytes: number }[] = [];

  constructor(windowMs = 5000) {
    this.windowMs = windowMs;
  }

  reset(): void {
    this.#samples = [];
  }

  /** Records the counter `bytes` at time `t` (ms). */
  add(t: number, bytes: number): void {
    const last = this.#samples.at(-1);
    if (last && t <= last.t) {
      last.bytes = Math.max(last.bytes, bytes);
      return;
    }
    this.#samples.push({ t, bytes });
    this.#prune(t);
  }

  /** Bytes per second as of time `now` (default: the last sample); 0 before two samples. */
  speed(now?: number): number {
    const last = this.#samples.at(-1);
    if (!last) return 0;
    const end = Math.max(now ?? last.t, last.t);
    this.#prune(end);
    const first = this.#samples[0]!;
    const dt = (end - first.t) / 1000;
    return dt > 0 ? (last.bytes - first.bytes) / dt : 0;
  }

  #prune(now: number): void {
    while (this.#samples.length > 2 && this.#samples[1]!.t <= now - this.windowMs) this.#samples.shift();
  }
}

/**
 * Bytes per second actually sent across a changing set of uploads: a folder of small files goes
 * up in batches, each file's own speed is 0 until it is done, and done files leave the running
 * set, so summing per-file speeds shows nothing. Sample it with every upload's snapshot; it
 * counts each upload's growth of `sentBytes` (monotonic across uploads that come and go).
 */
export class TransferRate {
  readonly #seen = new Map<string, number>();
  readonly #meter: SpeedMeter;
  #sent = 0;

  constructor(windowMs = 5000) {
    this.#meter = new SpeedMeter(windowMs);
  }

  sample(snapshots: Iterable<{ id: string; sentBytes: number }>, now: number): number {
    const ids = new Set<string>();
    for (const s of snapshots) {
      ids.add(s.id);
      const before = this.#seen.get(s.id) ?? 0;
      if (s.sentBytes > before) this.#sent += s.sentBytes - before;
      this.#seen.set(s.id, Math.max(before, s.sentBytes));
    }
    if (this.#seen.size > ids.size)
      for (const id of this.#seen.keys()) if (!ids.has(id)) this.#seen.delete(id);
    this.#meter.add(now, this.#sent);
    return this.#meter.speed(now);
  }
}

/** Seconds left at `bytesPerSecond`, or null when unknown (no speed yet). */
export function etaSeconds(remainingBytes: number, bytesPerSecond: number): number | null {
  if (remainingBytes <= 0) return 0;
  if (!(bytesPerSecond > 0)) return null;
  return remainingBytes / bytesPerSecond;
}
