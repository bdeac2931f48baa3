import { describe, expect, it, vi } from 'vitest';
import { effectScope, nextTick, ref } from 'vue';
import { api } from '../src/api/index.ts';
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
