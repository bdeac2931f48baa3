import { ApiError, isAbortError, NetworkError } from '../errors.ts';

/** Uppy's schedule: retry at once, then after 1 s, 3 s and 5 s; then give up. */
export const DEFAULT_RETRY_DELAYS: readonly number[] = [0, 1000, 3000, 5000];

/** Upper bound for a server's `Retry-After`. */
const MAX_RETRY_AFTER_MS = 60_000;

export interface RetryContext {
  /** Failures so far of this operation, including `err` (1 after the first failure). */
  failures: number;
  /** How many of those failures were `checksum_mismatch`. */
  checksumFailures: number;
}

/**
 * Whether a failed request is worth repeating: network errors, 5xx, 408 and 429 are; other
 * 4xx are not — except one `checksum_mismatch` (bytes may be corrupted in transit once; twice
 * means the file or its checksum is wrong). Aborts never are.
 */
export function isRetryable(err: unknown, ctx: RetryContext): boolean {
  if (isAbortError(err)) return false;
  if (err instanceof NetworkError) return true;
  if (err instanceof ApiError) {
    if (err.code === 'checksum_mismatch') return ctx.checksumFailures <= 1;
    return err.status >= 500 || err.status === 429 || err.status === 408;
  }
  return false;
}

/** The delay before the next attempt, or null to give up. */
export function retryDelay(
  err: unknown,
  ctx: RetryContext,
  delays: readonly number[] = DEFAULT_RETRY_DELAYS,
) {
  if (ctx.failures > delays.length || !isRetryable(err, ctx)) return null;
  let ms = delays[ctx.failures - 1]!;
  if (err instanceof ApiError && err.retryAfter !== null) {
    ms = Math.max(ms, Math.min(MAX_RETRY_AFTER_MS, err.retryAfter * 1000));
  }
  return ms;
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** setTimeout as a promise that rejects with the signal's reason on abort. */
export const sleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    if (ms <= 0) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export interface WithRetryOptions {
  delays?: readonly number[];
  signal?: AbortSignal;
  sleep?: Sleep;
  /** Called before each wait, e.g. to log or count. */
  onRetry?: (err: unknown, ctx: RetryContext, delayMs: number) => void;
  /** A veto on top of `isRetryable`: false gives up on this error at once. */
  retryable?: (err: unknown) => boolean;
}

/** Runs `fn` until it succeeds, the error is not retryable, or the delays are used up. */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: WithRetryOptions = {},
): Promise<T> {
  const ctx: RetryContext = { failures: 0, checksumFailures: 0 };
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      ctx.failures++;
      if (err instanceof ApiError && err.code === 'checksum_mismatch') ctx.checksumFailures++;
      const ms = options.retryable && !options.retryable(err) ? null : retryDelay(err, ctx, options.delays);
      if (ms === null) throw err;
      options.onRetry?.(err, { ...ctx }, ms);
      await (options.sleep ?? sleep)(ms, options.signal);
    }
  }
}
