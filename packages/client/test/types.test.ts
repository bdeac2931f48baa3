import { describe, expect, it } from 'vitest';
import type { DfsApi, HashWorkerScope, UploadTransport, WorkerLike } from '../src/index.ts';

describe('structural types', () => {
  it('a DOM Worker is a WorkerLike, `self` a HashWorkerScope, DfsApi an UploadTransport', () => {
    // compile-time checks (tsc runs over test/); nothing to execute
    const asWorker = (w: Worker): WorkerLike => w;
    const asScope = (s: Window & typeof globalThis): HashWorkerScope => s;
    const asTransport = (a: DfsApi): UploadTransport => a;
    expect([asWorker, asScope, asTransport]).toHaveLength(3);
  });
});
