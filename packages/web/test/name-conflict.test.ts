import { createHash, randomBytes } from 'node:crypto';
import { createPinia, setActivePinia } from 'pinia';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { api } from '../src/api/index.ts';
import { fromFileList } from '../src/composables/collect-files.ts';
import { InThreadWorker } from './in-thread-worker.ts';

const until = (check: () => boolean, timeout = 20_000) => vi.waitUntil(check, { timeout, interval: 25 });
const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');
const bytes = (n: number) => new Uint8Array(randomBytes(n));

describe('"Replace or keep both?" in the upload store, against a real server', () => {
  beforeAll(async () => {
    vi.stubGlobal('Worker', InThreadWorker);
    await api.signup('conflict-user', 'correct horse battery');
    await api.signin('conflict-user', 'correct horse battery');
    setActivePinia(createPinia());
  });

  async function store() {
    const { useUploadStore } = await import('../src/stores/uploads.ts');
    const s = useUploadStore();
    s.clearFinished();
    return s;
  }

  it('asks before sending; Replace gives the file the new content and keeps the old as a version', async () => {
    const s = await store();
    const folder = (await api.createFolder('conflict-replace')).file;
    const old = bytes(3000);
    const next = bytes(4000);
    const first = (await api.uploadSimple(new File([old], 'notes.txt'), { parentId: folder.id })).file;

    await s.addBatch(fromFileList([new File([next], 'notes.txt')]), folder.id);
    await until(() => s.nameQuestion !== null);
    expect(s.nameQuestion?.name).toBe('notes.txt');
    expect(s.nameQuestion?.existing.id).toBe(first.id);
    expect(s.nameQuestion?.offerAll).toBe(false);
    // Nothing was sent while the question is open.
    expect(s.rows[0]?.bytesUploaded).toBe(0);
    s.nameQuestion!.decide('replace', false);
    await until(() => s.totals.done === 1);
    expect(s.nameQuestion).toBeNull();

    const listed = (await api.listFiles({ parentId: folder.id })).items;
    expect(listed.map((f) => [f.id, f.name, f.sha1])).toEqual([[first.id, 'notes.txt', sha1(next)]]);
    const versions = (await api.listVersions(first.id)).items;
    expect(versions.map((v) => [v.current, v.sha1])).toEqual([
      [true, sha1(next)],
      [false, sha1(old)],
    ]);
  });

  it('Keep both adds "name (1).ext"; Skip sends nothing', async () => {
    const s = await store();
    const folder = (await api.createFolder('conflict-keep')).file;
    const old = bytes(100);
    await api.uploadSimple(new File([old], 'photo.jpg'), { parentId: folder.id });

    await s.addBatch(fromFileList([new File([bytes(200)], 'photo.jpg')]), folder.id);
    await until(() => s.nameQuestion !== null);
    s.nameQuestion!.decide('rename', false);
    await until(() => s.totals.done === 1);
    let names = (await api.listFiles({ parentId: folder.id })).items.map((f) => f.name).sort();
    expect(names).toEqual(['photo (1).jpg', 'photo.jpg']);

    s.clearFinished();
    await s.addBatch(fromFileList([new File([bytes(300)], 'photo.jpg')]), folder.id);
    await until(() => s.nameQuestion !== null);
    s.nameQuestion!.decide('skip', false);
    await until(() => s.totals.done === 1);
    expect(s.rows[0]?.skipped).toBe(true);
    names = (await api.listFiles({ parentId: folder.id })).items.map((f) => f.name).sort();
    expect(names).toEqual(['photo (1).jpg', 'photo.jpg']);
  });

  it('"for all remaining conflicts" answers every conflict of the batch at once, small files and big', async () => {
    const s = await store();
    const folder = (await api.createFolder('conflict-all')).file;
    const names = ['a.txt', 'b.txt', 'c.txt', 'big.bin'];
    const olds = names.map((n) => (n === 'big.bin' ? bytes(5 * 1024 * 1024 + 3) : bytes(500)));
    const ids: string[] = [];
    for (const [i, n] of names.entries()) {
      const f =
        n === 'big.bin' ? await uploadChunked(olds[i]!, n, folder.id) : await small(olds[i]!, n, folder.id);
      ids.push(f);
    }
    // A batch of small files (they go in batch requests when nothing conflicts), a chunked one
    // and a new name that asks nothing.
    const nexts = names.map((n) => (n === 'big.bin' ? bytes(5 * 1024 * 1024 + 9) : bytes(600)));
    const files = [...names.map((n, i) => new File([nexts[i]!], n)), new File([bytes(10)], 'new.txt')];
    await s.addBatch(fromFileList(files), folder.id);
    await until(() => s.nameQuestion !== null);
    expect(s.nameQuestion?.offerAll).toBe(true);
    s.nameQuestion!.decide('replace', true);
    await until(() => s.totals.done + s.totals.failed === files.length);
    expect(s.totals.failed).toBe(0);
    expect(s.nameQuestion).toBeNull();

    const listed = (await api.listAllFiles({ parentId: folder.id })).items;
    expect(listed.map((f) => f.name).sort()).toEqual([...names, 'new.txt'].sort());
    for (const [i, n] of names.entries()) {
      const f = listed.find((x) => x.name === n)!;
      expect(f.id).toBe(ids[i]);
      expect(f.sha1).toBe(sha1(nexts[i]!));
      const versions = (await api.listVersions(f.id)).items;
      expect(versions[1]?.sha1).toBe(sha1(olds[i]!));
    }
  });
});

async function small(b: Uint8Array<ArrayBuffer>, name: string, parentId: string): Promise<string> {
  return (await api.uploadSimple(new File([b], name), { parentId })).file.id;
}

async function uploadChunked(b: Uint8Array<ArrayBuffer>, name: string, parentId: string): Promise<string> {
  const { Upload, fileSourceFromBlob } = await import('@dfs/client');
  const u = new Upload(fileSourceFromBlob(new File([b], name)), {
    transport: api,
    parentId,
    smallFileLimit: -1,
  });
  u.start();
  return (await u.result()).id;
}
