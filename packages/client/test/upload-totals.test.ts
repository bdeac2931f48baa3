/** The panel's overall numbers against the files' own: they must never contradict each other. */
import { describe, expect, it } from 'vitest';
import { TransferRate, totalsOf, UploadProgress, type UploadSnapshot } from '../src/index.ts';

const MiB = 1024 * 1024;
let n = 0;
function snap(over: Partial<UploadSnapshot>): UploadSnapshot {
  return {
    id: `s${++n}`,
    name: 'f',
    size: 100 * MiB,
    parentId: null,
    state: 'queued',
    route: 'chunked',
    bytesHashed: 0,
    hashing: false,
    hashMs: null,
    bytesUploaded: 0,
    sentBytes: 0,
    speed: 0,
    hashSpeed: 0,
    eta: null,
    verifying: false,
    instant: false,
    skipped: false,
    sha1: null,
    uploadId: null,
    chunkSize: null,
    chunkCount: null,
    chunksDone: 0,
    retries: 0,
    file: null,
    error: null,
    ...over,
  };
}

describe('overall speed and time left', () => {
  it('one big file sending while it hashes: the overall ETA is the file’s (the slower of the two)', () => {
    // 40 MiB left at 1.2 MiB/s is 33 s; the hash needs 64 s more: the file says 64 s.
    const file = snap({
      route: 'speculative',
      state: 'uploading',
      hashing: true,
      bytesUploaded: 60 * MiB,
      sentBytes: 60 * MiB,
      speed: 1.2 * MiB,
      bytesHashed: 36 * MiB,
      hashSpeed: 1 * MiB,
      eta: 64,
    });
    const t = totalsOf([file]);
    expect(t.eta).toBe(64);
    expect(t.speed).toBe(file.speed);
  });

  it('every byte sent but the hash still running: not "0 s left"', () => {
    const file = snap({
      route: 'speculative',
      state: 'hashing',
      hashing: true,
      bytesUploaded: 100 * MiB,
      sentBytes: 100 * MiB,
      bytesHashed: 92 * MiB,
      hashSpeed: 1 * MiB,
      speed: 1 * MiB,
      eta: 8,
    });
    expect(totalsOf([file]).eta).toBe(8);
  });

  it('the server verifying what it received: no estimate rather than 0 s', () => {
    const progress = new UploadProgress({
      size: 100 * MiB,
      now: () => 0,
      speedWindowMs: 5000,
      intervalMs: 100,
      emit: () => {},
    });
    progress.setConfirmed(100 * MiB);
    expect(progress.view('completing').eta).toBeNull();
    const file = snap({ state: 'completing', bytesUploaded: 100 * MiB, sentBytes: 100 * MiB, eta: null });
    expect(totalsOf([file, snap({ state: 'queued', size: 10 * MiB })]).eta).toBeNull();
  });

  it('never promises less than a running file needs, with files still waiting', () => {
    const running = snap({ state: 'uploading', bytesUploaded: 10 * MiB, speed: 1 * MiB, eta: 90 });
    const waiting = snap({ state: 'queued', size: 1 * MiB });
    const t = totalsOf([running, waiting], { rate: 10 * MiB });
    expect(t.eta).toBeGreaterThanOrEqual(90);
  });

  it('a folder of small files: a speed and an ETA from the bytes that went up, not 0 B/s', () => {
    const rate = new TransferRate(5000);
    const files = Array.from({ length: 100 }, () =>
      snap({ route: 'small', size: 10_000, state: 'uploading' }),
    );
    const at = (ms: number, done: number) => {
      for (let i = 0; i < done; i++) {
        files[i] = { ...files[i]!, state: 'done', bytesUploaded: 10_000, sentBytes: 10_000, eta: 0 };
      }
      return totalsOf(files, { rate: rate.sample(files, ms) });
    };
    at(0, 0);
    at(1000, 20);
    const t = at(2000, 40);
    // 40 files × 10 kB in 2 s; per-file speeds are all 0.
    expect(t.speed).toBe(200_000);
    expect(t.eta).toBeCloseTo((60 * 10_000) / 200_000, 5);
  });

  it('the rate keeps counting when finished files leave the list', () => {
    const rate = new TransferRate(5000);
    const a = snap({ id: 'a', sentBytes: 1000 });
    const b = snap({ id: 'b', sentBytes: 0 });
    rate.sample([a, b], 0);
    expect(rate.sample([{ ...b, sentBytes: 1000 }], 1000)).toBe(1000);
  });
});
