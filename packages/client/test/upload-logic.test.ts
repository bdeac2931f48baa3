import { describe, expect, it } from 'vitest';
import {
  ApiError,
  bytesOfChunks,
  canTransition,
  chunkCountFor,
  chunkRange,
  DEFAULT_RETRY_DELAYS,
  etaSeconds,
  isRetryable,
  Limiter,
  missingChunks,
  NetworkError,
  retryDelay,
  SpeedMeter,
  withRetry,
} from '../src/index.ts';
import { PieceCrcs } from '../src/upload/piece-crcs.ts';

const err5xx = () => new ApiError(503, 'storage_unavailable', 'down');
const checksum = () => new ApiError(400, 'checksum_mismatch', 'bad md5');

describe('chunk planning', () => {
  it('splits a file into exact chunks with a short last one', () => {
    expect(chunkCountFor(0, 10)).toBe(0);
    expect(chunkCountFor(1, 10)).toBe(1);
    expect(chunkCountFor(10, 10)).toBe(1);
    expect(chunkCountFor(11, 10)).toBe(2);
    expect(chunkRange(25, 10, 0)).toEqual({ index: 0, start: 0, end: 10 });
    expect(chunkRange(25, 10, 2)).toEqual({ index: 2, start: 20, end: 25 });
    expect(() => chunkCountFor(10, 0)).toThrow(RangeError);
  });

  it('finds missing chunks and counts their bytes', () => {
    expect(missingChunks(5, [0, 3])).toEqual([1, 2, 4]);
    expect(missingChunks(0, [])).toEqual([]);
    expect(bytesOfChunks(25, 10, [0, 2])).toBe(15);
  });

  it('reuses hashing-pass CRCs only when pieces line up with chunks, waiting for a running pass', async () => {
    const signal = new AbortController().signal;
    const done = new PieceCrcs(10, [7, 8], true);
    expect(done.get(1, 10, signal)).toBe(8);
    expect(done.get(0, 20, signal)).toBeNull();
    expect(done.get(2, 10, signal)).toBeNull(); // the pass is over: nothing more comes

    const running = new PieceCrcs(10);
    const second = running.get(1, 10, signal);
    expect(second).toBeInstanceOf(Promise);
    running.set(1, 42);
    await expect(second).resolves.toBe(42);
    const third = running.get(2, 10, signal);
    running.close(); // the pass stopped: the chunk takes its own CRC
    await expect(third).resolves.toBeNull();

    const paused = new AbortController();
    const waiting = new PieceCrcs(10).get(0, 10, paused.signal);
    paused.abort(new Error('paused'));
    await expect(waiting).rejects.toThrow('paused');
  });
});

describe('retry schedule', () => {
  it('retries network errors, 5xx, 429; not other 4xx; checksum_mismatch once', () => {
    const ctx = { failures: 1, checksumFailures: 0 };
    expect(isRetryable(new NetworkError('x'), ctx)).toBe(true);
    expect(isRetryable(err5xx(), ctx)).toBe(true);
    expect(isRetryable(new ApiError(429, 'rate_limited', 'slow'), ctx)).toBe(true);
    expect(isRetryable(new ApiError(400, 'bad_chunk_size', 'x'), ctx)).toBe(false);
    expect(isRetryable(new ApiError(403, 'proof_failed', 'x'), ctx)).toBe(false);
    expect(isRetryable(checksum(), { failures: 1, checksumFailures: 1 })).toBe(true);
    expect(isRetryable(checksum(), { failures: 2, checksumFailures: 2 })).toBe(false);
    expect(isRetryable(new DOMException('x', 'AbortError'), ctx)).toBe(false);
  });

  it('waits 0, 1000, 3000, 5000 ms, then gives up; honours Retry-After', () => {
    const e = err5xx();
    const delays = [1, 2, 3, 4, 5].map((failures) => retryDelay(e, { failures, checksumFailures: 0 }));
    expect(delays).toEqual([...DEFAULT_RETRY_DELAYS, null]);
    const limited = new ApiError(429, 'rate_limited', 'x', {}, 7);
    expect(retryDelay(limited, { failures: 1, checksumFailures: 0 })).toBe(7000);
  });

  it('withRetry sleeps the schedule and stops on a fatal error', async () => {
    const slept: number[] = [];
    let calls = 0;
    const result = await withRetry(
      async () => {
        if (++calls < 4) throw new NetworkError('reset');
        return 'ok';
      },
      { sleep: async (ms) => void slept.push(ms) },
    );
    expect(result).toBe('ok');
    expect(slept).toEqual([0, 1000, 3000]);

    slept.length = 0;
    calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw checksum();
        },
        { sleep: async (ms) => void slept.push(ms) },
      ),
    ).rejects.toMatchObject({ code: 'checksum_mismatch' });
    expect(calls).toBe(2);

    calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw err5xx();
        },
        { sleep: async () => {} },
      ),
    ).rejects.toMatchObject({ status: 503 });
    expect(calls).toBe(5);
  });
});

describe('speed and ETA', () => {
  it('averages over the window and decays when stalled', () => {
    const m = new SpeedMeter(5000);
    expect(m.speed(0)).toBe(0);
    m.add(0, 0);
    m.add(1000, 1_000_000);
    expect(m.speed()).toBe(1_000_000);
    m.add(2000, 3_000_000);
    expect(m.speed()).toBe(1_500_000);
    // 10 s later, faster: old samples leave the window
    for (let t = 3000; t <= 12_000; t += 1000) m.add(t, 3_000_000 + (t - 2000) * 4000);
    expect(m.speed()).toBe(4_000_000);
    // stalled: 5 s with nothing new halves the apparent speed
    const at = m.speed(17_000);
    expect(at).toBeLessThan(4_000_000);
    expect(at).toBeGreaterThan(0);
  });

  it('computes ETA from remaining bytes', () => {
    expect(etaSeconds(10_000, 1000)).toBe(10);
    expect(etaSeconds(0, 0)).toBe(0);
    expect(etaSeconds(10, 0)).toBeNull();
  });
});

describe('state machine', () => {
  it('allows the documented transitions only', () => {
    expect(canTransition('queued', 'hashing')).toBe(true);
    expect(canTransition('hashing', 'checking')).toBe(true);
    expect(canTransition('checking', 'done')).toBe(true); // instant
    expect(canTransition('uploading', 'paused')).toBe(true);
    expect(canTransition('paused', 'queued')).toBe(true);
    expect(canTransition('error', 'queued')).toBe(true);
    expect(canTransition('done', 'queued')).toBe(false);
    expect(canTransition('canceled', 'queued')).toBe(false);
    expect(canTransition('queued', 'uploading')).toBe(true); // a small file: one request
    expect(canTransition('uploading', 'done')).toBe(true); // speculative: the server had the content
    expect(canTransition('uploading', 'hashing')).toBe(true); // speculative: sent, hash still running
    expect(canTransition('paused', 'uploading')).toBe(false);
    expect(canTransition('hashing', 'uploading')).toBe(false);
  });
});

describe('Limiter', () => {
  it('grants at most `limit` slots and hands them on in order', async () => {
    const l = new Limiter(2);
    const r1 = await l.acquire();
    const r2 = await l.acquire();
    const order: number[] = [];
    const p3 = l.acquire().then((r) => {
      order.push(3);
      return r;
    });
    const ctl = new AbortController();
    const p4 = l.acquire(ctl.signal);
    const p5 = l.acquire().then((r) => {
      order.push(5);
      return r;
    });
    expect(l.active).toBe(2);
    ctl.abort(new Error('gone'));
    await expect(p4).rejects.toThrow('gone');
    r1();
    r1(); // double release is harmless
    (await p3)();
    r2();
    (await p5)();
    expect(order).toEqual([3, 5]);
    expect(l.active).toBe(0);
  });
});
