import { createHash, randomBytes } from 'node:crypto';
import type { HashWorkerRequest, WorkerLike } from '@dfs/client';
import { createPinia, setActivePinia } from 'pinia';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { api } from '../src/api/index.ts';
import { fromFileList } from '../src/composables/collect-files.ts';
import { InThreadWorker } from './in-thread-worker.ts';

const until = (check: () => boolean, timeout = 20_000) => vi.waitUntil(check, { timeout, interval: 25 });
const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');

/** Messages that kill the worker they reach, as a worker crashes (out of memory, say). */
let crashes = 0;

/** The app's real worker (in this thread), unless a crash is due. */
class FlakyWorker {
  constructor() {
    const inner = new InThreadWorker() as unknown as MessagePort;
    type ErrorListener = (ev: { message?: string }) => void;
    const onError: ErrorListener[] = [];
    let dead = false;
    const worker = {
      addEventListener(type: string, listener: ErrorListener | ((ev: MessageEvent) => void)) {
        if (type === 'error') onError.push(listener as ErrorListener);
        else inner.addEventListener('message', listener as (ev: MessageEvent) => void);
      },
      postMessage(msg: HashWorkerRequest, transfer: Transferable[]) {
        if (dead) return;
        if (crashes > 0) {
          crashes--;
          dead = true;
          setTimeout(() => {
            for (const l of onError) l({ message: 'out of memory' });
          }, 5);
          return;
        }
        inner.postMessage(msg, transfer);
      },
      start: () => inner.start(),
      terminate: () => inner.close(),
    };
    // biome-ignore lint/correctness/noConstructorReturn: stands in for the browser's Worker
    return worker satisfies WorkerLike as unknown as FlakyWorker;
  }
}

describe('the hash worker pool after a worker crash', () => {
  beforeAll(async () => {
    vi.stubGlobal('Worker', FlakyWorker);
    await api.signup('pool-user', 'correct horse battery');
    await api.signin('pool-user', 'correct horse battery');
    setActivePinia(createPinia());
  });

  it('a crash fails neither the small file that met it nor any later one', async () => {
    const { useUploadStore } = await import('../src/stores/uploads.ts');
    const { sha1OfBlobInWorkers } = await import('../src/composables/hash-pool.ts');
    const store = useUploadStore();
    const folder = (await api.createFolder('pool-target')).file;

    // The first pool crashes; the pool made after it works.
    crashes = 1;
    const first = new Uint8Array(randomBytes(2000));
    await expect(sha1OfBlobInWorkers(new Blob([first]))).resolves.toBe(sha1(first));
    expect(crashes).toBe(0);

    // Two crashes in a row are reported, not retried for ever; the tab still uploads afterwards.
    crashes = 2;
    await expect(sha1OfBlobInWorkers(new Blob([first]))).rejects.toThrow(/hash worker failed/);
    expect(crashes).toBe(0);

    const files = Array.from(
      { length: 5 },
      (_, i) => new File([new Uint8Array(randomBytes(1000 + i))], `s${i}.txt`),
    );
    await store.addBatch(fromFileList(files), folder.id);
    await until(() => store.totals.done + store.totals.failed === files.length);
    expect(store.totals.failed).toBe(0);
    const listed = (await api.listFiles({ parentId: folder.id })).items;
    expect(listed.map((f) => f.name).sort()).toEqual(files.map((f) => f.name));
  });
});
