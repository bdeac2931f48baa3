import { describe, expect, it, vi } from 'vitest';
import { effectScope, nextTick, ref } from 'vue';
import { api } from '../src/api/index.ts';
import { invalidateFolder } from '../src/api/query.ts';
import { useFileList } from '../src/composables/file-list.ts';
import { useFolderPath } from '../src/composables/folder-path.ts';

const until = (check: () => boolean) => vi.waitUntil(check, { timeout: 5000, interval: 20 });

describe('the file list and the breadcrumbs, against a real server', () => {
  it('signs in with the session cookie, as the app does in a browser', async () => {
    await api.signup('web-alice', 'correct horse battery');
    const { user } = await api.signin('web-alice', 'correct horse battery');
    expect(user.username).toBe('web-alice');
    // No token: the HttpOnly cookie the server set authenticates the next request.
    expect(api.token).toBeNull();
    expect((await api.me()).user.username).toBe('web-alice');
  });

  it('lists a folder sorted by the server, searches the tree, and follows sort changes', async () => {
    const root = (await api.createFolder('web-docs', null, { existing: 'reuse' })).file;
    for (const name of ['b.txt', 'a.txt', 'c.txt']) {
      await api.uploadSimple(new File([name], name), { parentId: root.id });
    }
    await api.createFolder('zz-sub', root.id);

    const scope = effectScope();
    const folderId = ref<string | null>(root.id);
    const q = ref('');
    const list = scope.run(() => useFileList(folderId, q))!;
    await until(() => !list.loading.value && list.items.value.length === 4);
    // Folders first, then names in order.
    expect(list.items.value.map((f) => f.name)).toEqual(['zz-sub', 'a.txt', 'b.txt', 'c.txt']);
    expect(list.total.value).toBe(4);

    list.order.value = 'desc';
    await nextTick();
    await until(() => !list.loading.value && list.items.value[1]?.name === 'c.txt');
    // Still folders first; the files now in descending order.
    expect(list.items.value.map((f) => f.name)).toEqual(['zz-sub', 'c.txt', 'b.txt', 'a.txt']);

    q.value = 'b.t';
    await nextTick();
    await until(() => !list.loading.value && list.searching.value && list.items.value.length === 1);
    expect(list.items.value[0]?.name).toBe('b.txt');
    scope.stop();
  });

  it('fetches every page of a large folder and follows invalidation and local edits', async () => {
    const big = (await api.createFolder('web-big', null, { existing: 'reuse' })).file;
    // 400 entries: more than the first page of 300, so a second page must follow on its own.
    for (let start = 0; start < 400; start += 100) {
      const files = Array.from({ length: 100 }, (_, i) => {
        const name = `f${String(start + i).padStart(3, '0')}.txt`;
        return { name, blob: new File([name], name), parentId: big.id };
      });
      await api.uploadBatch(files);
    }
    const scope = effectScope();
    const list = scope.run(() => useFileList(ref<string | null>(big.id), ref('')))!;
    await until(() => !list.loadingMore.value && list.items.value.length === 400);
    expect(list.total.value).toBe(400);
    expect(list.items.value[399]?.name).toBe('f399.txt');
    expect(new Set(list.items.value.map((f) => f.id)).size).toBe(400);

    // A file that lands from elsewhere (an upload) shows once its folder is invalidated.
    await api.uploadSimple(new File(['late'], 'zz-late.txt'), { parentId: big.id });
    expect(list.items.value.some((f) => f.name === 'zz-late.txt')).toBe(false);
    invalidateFolder(big.id);
    await until(() => list.items.value.some((f) => f.name === 'zz-late.txt'));
    expect(list.total.value).toBe(401);

    // Local edits apply at once to the cached pages, total included.
    const first = list.items.value[0]!;
    list.patchLocal({ ...first, name: 'renamed-locally.txt' });
    expect(list.items.value[0]?.name).toBe('renamed-locally.txt');
    list.removeLocal([first.id, list.items.value[1]!.id]);
    expect(list.items.value).toHaveLength(399);
    expect(list.total.value).toBe(399);
    scope.stop();
  });

  it('builds the breadcrumbs of a deep folder in one request', async () => {
    const a = (await api.createFolder('crumb-a')).file;
    const b = (await api.createFolder('crumb-b', a.id)).file;
    const c = (await api.createFolder('crumb-c', b.id)).file;
    const scope = effectScope();
    const folderId = ref<string | null>(c.id);
    const path = scope.run(() => useFolderPath(folderId))!;
    await until(() => path.chain.value.length === 3);
    expect(path.chain.value.map((f) => f.name)).toEqual(['crumb-a', 'crumb-b', 'crumb-c']);
    folderId.value = null;
    await nextTick();
    await until(() => path.chain.value.length === 0);
    expect(path.error.value).toBeNull();
    scope.stop();
  });

  it('shows an error for a folder that is not there', async () => {
    const scope = effectScope();
    const path = scope.run(() => useFolderPath(ref<string | null>('zz-no-such-folder')))!;
    await until(() => path.error.value !== null);
    expect(path.chain.value).toEqual([]);
    scope.stop();
  });
});
