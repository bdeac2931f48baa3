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

  it('a folder sent again skips what is already there with the same content, and sends the rest', async () => {
    const { useUploadStore } = await import('../src/stores/uploads.ts');
    const store = useUploadStore();
    for (const r of store.rows) await store.remove(r.id);
    const parent = (await api.createFolder('store-retry')).file;
    const contents = Array.from({ length: 12 }, (_, i) => new Uint8Array(randomBytes(500 + i)));
    const big = new Uint8Array(randomBytes(5 * 1024 * 1024 + 7)); // the chunked path
    const picked = (only: number) => ({
      files: [
        ...contents
          .slice(0, only)
          .map((b, i) => ({ file: new File([b], `file_${i}.txt`), dirs: ['photos'] })),
        { file: new File([big], 'big.bin'), dirs: ['photos'] },
      ],
      folders: [['photos']],
    });
    // The first run got 7 of the 12 small files and the big one there.
    await store.addBatch(picked(7), parent.id);
    await until(() => store.totals.done === 8);
    store.clearFinished();

    // The same folder again, now whole: 8 files are there already, 5 are new.
    await store.addBatch(picked(12), parent.id);
    await until(() => store.totals.done + store.totals.failed === 13);
    expect(store.totals.failed).toBe(0);
    expect(store.totals.skipped).toBe(8);
    expect(
      store.rows
        .filter((r) => r.skipped)
        .map((r) => r.name)
        .sort(),
    ).toEqual(['big.bin', ...Array.from({ length: 7 }, (_, i) => `file_${i}.txt`)].sort());
    const photos = (await api.listFiles({ parentId: parent.id })).items[0]!;
    const listed = (await api.listAllFiles({ parentId: photos.id })).items;
    expect(listed.map((f) => f.name).sort()).toEqual(
      ['big.bin', ...contents.map((_, i) => `file_${i}.txt`)].sort(),
    );
    expect(listed.find((f) => f.name === 'big.bin')?.sha1).toBe(sha1(big));

    // Other content under a taken name asks first; "Keep both" adds it beside, as the API does.
    store.clearFinished();
    await store.addBatch(
      {
        files: [{ file: new File([new Uint8Array(randomBytes(600))], 'file_0.txt'), dirs: ['photos'] }],
        folders: [['photos']],
      },
      parent.id,
    );
    await until(() => store.nameQuestion !== null);
    expect(store.nameQuestion?.path).toBe('photos/file_0.txt');
    store.nameQuestion!.decide('rename', false);
    await until(() => store.totals.done === 1);
    expect(store.totals.skipped).toBe(0);
    const after = (await api.listAllFiles({ parentId: photos.id })).items.map((f) => f.name);
    expect(after).toContain('file_0 (1).txt');
  });

  it("keeps each File's lastModified as the entry's mtime, whichever way the file travels", async () => {
    const { useUploadStore } = await import('../src/stores/uploads.ts');
    const store = useUploadStore();
    store.clearFinished();
    const folder = (await api.createFolder('store-times')).file;
    const at = (i: number) => Date.UTC(2019, i, 2, 3, 4, 5, 600 + i);
    const files = [
      // Chunked, alone in one request, and several small ones (a batch).
      new File([new Uint8Array(randomBytes(9 * 1024 * 1024))], 'big.bin', { lastModified: at(0) }),
      ...Array.from(
        { length: 4 },
        (_, i) =>
          new File([new Uint8Array(randomBytes(100 + i))], `small-${i}.txt`, { lastModified: at(i + 1) }),
      ),
    ];
    await store.addBatch(fromFileList(files), folder.id);
    await until(() => store.totals.done === files.length);
    const listed = (await api.listFiles({ parentId: folder.id })).items;
    expect(Object.fromEntries(listed.map((f) => [f.name, f.mtime]))).toEqual(
      Object.fromEntries(files.map((f) => [f.name, new Date(f.lastModified).toISOString()])),
    );
  });
});
