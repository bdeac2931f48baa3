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

/** Seconds left at `bytesPerSecond`, or null when unknown (no speed yet). */
export function etaSeconds(remainingBytes: number, bytesPerSecond: number): number | null {
  if (remainingBytes <= 0) return 0;
  if (!(bytesPerSecond > 0)) return null;
  return remainingBytes / bytesPerSecond;
}
