import { createHash, randomBytes } from 'node:crypto';
import { createPinia, setActivePinia } from 'pinia';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { api } from '../src/api/index.ts';
import { queryClient, queryKeys } from '../src/api/query.ts';
import { fromFileList } from '../src/composables/collect-files.ts';
import { InThreadWorker } from './in-thread-worker.ts';

const until = (check: () => boolean, timeout = 20_000) => vi.waitUntil(check, { timeout, interval: 25 });
const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');

describe('the upload store, against a real server', () => {
  beforeAll(async () => {
    vi.stubGlobal('Worker', InThreadWorker);
    await api.signup('store-user', 'correct horse battery');
    await api.signin('store-user', 'correct horse battery');
    setActivePinia(createPinia());
  });

  it('uploads a small and a chunked file through the worker pool, and refreshes the listing', async () => {
    const { useUploadStore } = await import('../src/stores/uploads.ts');
    const store = useUploadStore();
    const folder = (await api.createFolder('store-target')).file;
    // A listing the page would show: it must learn of the new files without a reload.
    const key = [...queryKeys.folder(folder.id), 'name', 'asc'];
    queryClient.setQueryData(key, { pages: [], pageParams: [] });

    const small = new Uint8Array(randomBytes(3000));
    const big = new Uint8Array(randomBytes(9 * 1024 * 1024 + 123));
    const files = [new File([small], 'small.txt'), new File([big], 'big.bin')];
    await store.addBatch(fromFileList(files), folder.id);

    await until(() => store.totals.done === 2);
    expect(store.rows.map((r) => [r.name, r.state]).sort()).toEqual([
      ['big.bin', 'done'],
      ['small.txt', 'done'],
    ]);
    // The big file was hashed in this tab, through the pool: every byte, with the time it took.
    const bigRow = store.rows.find((r) => r.name === 'big.bin')!;
    expect(bigRow.bytesHashed).toBe(big.length);
    expect(bigRow.hashMs).toBeGreaterThan(0);
    const listed = (await api.listFiles({ parentId: folder.id })).items;
    expect(Object.fromEntries(listed.map((f) => [f.name, f.sha1]))).toEqual({
      'big.bin': sha1(big),
      'small.txt': sha1(small),
    });
    // The store told the cache: the folder's listing is stale now.
    await until(() => queryClient.getQueryState(key)?.isInvalidated === true, 5000);
    expect(store.totals.failed).toBe(0);
  });

  it('reports a failure with the server’s reason', async () => {
    const { useUploadStore } = await import('../src/stores/uploads.ts');
    const store = useUploadStore();
    store.clearFinished();
    // A folder that is gone by the time the upload starts: the server refuses with not_found.
    const doomed = (await api.createFolder('store-doomed')).file;
    await api.deleteFile(doomed.id);
    await store.addBatch(
      fromFileList([new File([new Uint8Array(randomBytes(5000))], 'orphan.txt')]),
      doomed.id,
    );
    await until(() => store.totals.failed === 1);
    expect(store.rows[0]?.state).toBe('error');
    expect(store.rows[0]?.error?.code).toBe('not_found');
  });
});
