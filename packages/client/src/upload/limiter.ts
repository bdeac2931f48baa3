/** A counting semaphore with abortable waits (shared request / hashing slots across uploads). */
export class Limiter {
  #limit: number;
  #active = 0;
  readonly #waiting: { grant: () => void; signal: AbortSignal | undefined; reject: (e: unknown) => void }[] =
    [];

  constructor(limit: number) {
    if (!(limit >= 1)) throw new RangeError('limit must be >= 1');
    this.#limit = limit;
  }

  get active(): number {
    return this.#active;
  }
  get pending(): number {
    return this.#waiting.length;
  }
  get limit(): number {
    return this.#limit;
  }
  set limit(n: number) {
    this.#limit = Math.max(1, n);
    this.#drain();
  }

  /** Waits for a slot; resolves with its release function (call it exactly once). */
  acquire(signal?: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const entry = {
        signal,
        reject,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.#active++;
          let released = false;
          resolve(() => {
            if (released) return;
            released = true;
            this.#active--;
            this.#drain();
          });
        },
      };
      const onAbort = () => {
        const i = this.#waiting.indexOf(entry);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(entry);
      this.#drain();
    });
  }

  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #drain(): void {
    while (this.#active < this.#limit && this.#waiting.length > 0) this.#waiting.shift()!.grant();
  }
}
