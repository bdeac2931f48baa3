import { createHash } from 'node:crypto';
import { isRestoreStarted, type RestoreAnswer } from '@dfs/client';
import type { FileEntry } from '@dfs/shared';
import { flushPromises, mount } from '@vue/test-utils';
import { NDialogProvider, NMessageProvider } from 'naive-ui';
import { createPinia, setActivePinia } from 'pinia';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { defineComponent, effectScope, h, ref, watch } from 'vue';
import { api } from '../src/api/index.ts';
import AlertBanner from '../src/components/AlertBanner.vue';
import RestoreStatus from '../src/components/RestoreStatus.vue';
import { forgetAllFolders, useFolderPath } from '../src/composables/folder-path.ts';
import { justBefore } from '../src/composables/history.ts';
import { i18n } from '../src/i18n/index.ts';
import { useAuthStore } from '../src/stores/auth.ts';
import { useRestoreStore } from '../src/stores/restore.ts';

const until = (check: () => boolean) => vi.waitUntil(check, { timeout: 15_000, interval: 25 });
const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');
const $ = (testId: string) => document.body.querySelector<HTMLElement>(`[data-testid="${testId}"]`);

/** Clicks the confirm dialog's button (Naive renders it in the body). */
async function confirm(label: string): Promise<string> {
  await until(() => document.querySelector('.n-dialog') !== null);
  const text = document.querySelector('.n-dialog')!.textContent ?? '';
  const button = [...document.querySelectorAll<HTMLButtonElement>('.n-dialog button')].find(
    (b) => b.textContent?.trim() === label,
  );
  expect(button).toBeDefined();
  button!.click();
  return text;
}

async function names(parentId: string): Promise<Record<string, string | null>> {
  const { items } = await api.listFiles({ parentId });
  return Object.fromEntries(items.map((f) => [f.name, f.sha1]));
}

function shell() {
  const Host = defineComponent({
    setup: () => () =>
      h(NMessageProvider, null, {
        default: () => h(NDialogProvider, null, { default: () => [h(AlertBanner), h(RestoreStatus)] }),
      }),
  });
  return mount(Host, { global: { plugins: [i18n] }, attachTo: document.body });
}

describe('point-in-time restore and the mass-change alert, against a real server', () => {
  const username = 'web-restore';
  beforeAll(async () => {
    setActivePinia(createPinia());
    await useAuthStore().signup(username, 'correct horse battery');
  });
  afterEach(() => {
    useRestoreStore().clear();
  });
  afterAll(() => {
    document.body.innerHTML = '';
  });

  it('restores a folder to before a rename and shows what it did', async () => {
    const notes = (await api.createFolder('Notes')).file;
    const a = (await api.uploadSimple(new File(['alpha'], 'a.txt'), { parentId: notes.id })).file;
    await api.updateFile(a.id, { name: 'renamed.txt' });
    await api.uploadSimple(new File(['later'], 'later.txt'), { parentId: notes.id });
    const renamed = (await api.history({ folderId: notes.id })).items.find((e) => e.action === 'renamed')!;

    const wrapper = shell();
    const store = useRestoreStore();
    const at = justBefore(renamed.at);
    const result = await store.follow(() => api.restore({ folderId: notes.id, at }), { folder: 'Notes', at });
    expect(result).not.toBeNull();
    await flushPromises();
    expect($('restore-status')?.dataset.state).toBe('done');
    expect($('restore-status')?.textContent).toContain('“Notes” is back as it was');
    expect($('restore-trashed')?.dataset.n).toBe('1');
    expect(Number($('restore-restored')?.dataset.n)).toBeGreaterThanOrEqual(1);
    expect(await names(notes.id)).toEqual({ 'a.txt': sha1('alpha') });
    wrapper.unmount();
  });

  it('follows a large restore’s job to the end, with its progress on the way', async () => {
    const bulk = (await api.createFolder('Bulk')).file;
    await api.uploadSimple(new File(['kept'], 'kept.txt'), { parentId: bulk.id });
    const at = new Date(Date.now() + 5).toISOString();
    await new Promise((r) => setTimeout(r, 20));
    // More entries than the server restores within one request: it answers a job (202).
    for (let b = 0; b < 11; b++) {
      await api.uploadBatch(
        Array.from({ length: 100 }, (_, i) => ({
          blob: new File([`${b}-${i}`], `x${b}-${i}.txt`),
          name: `x${b}-${i}.txt`,
          parentId: bulk.id,
        })),
      );
    }
    const wrapper = shell();
    const store = useRestoreStore();
    let answer: RestoreAnswer | null = null;
    let seenRunning = 0;
    const stop = watch(
      () => store.run && { state: store.run.state, total: store.run.total },
      (r) => {
        if (r?.state === 'running' && r.total > 0) seenRunning = Math.max(seenRunning, r.total);
      },
    );
    const result = await store.follow(
      async () => {
        answer = await api.restore({ folderId: bulk.id, at });
        return answer;
      },
      { folder: 'Bulk', at },
    );
    stop();
    expect(answer && isRestoreStarted(answer)).toBe(true);
    expect(seenRunning).toBeGreaterThanOrEqual(1100);
    expect(result?.trashed).toBe(1100);
    await flushPromises();
    expect($('restore-status')?.dataset.state).toBe('done');
    expect($('restore-trashed')?.textContent).toContain('1100 newer entries moved to the trash');
    expect(await names(bulk.id)).toEqual({ 'kept.txt': sha1('kept') });
    wrapper.unmount();
  }, 60_000);

  it('a failed restore says why, in words', async () => {
    const wrapper = shell();
    const at = new Date().toISOString();
    const result = await useRestoreStore().follow(
      () => api.restore({ folderId: '00000000000000000000000000', at }),
      { folder: 'Gone', at },
    );
    expect(result).toBeNull();
    await flushPromises();
    expect($('restore-status')?.dataset.state).toBe('failed');
    expect($('restore-error')?.textContent?.trim()).not.toBe('');
    wrapper.unmount();
  });

  it('shows the alert, undoes the burst, revokes the app password and dismisses', async () => {
    const synced = (await api.createFolder('Synced')).file;
    const files: FileEntry[] = [];
    for (let i = 0; i < 12; i++)
      files.push(
        (await api.uploadSimple(new File([`text ${i}`], `f${i}.txt`), { parentId: synced.id })).file,
      );
    const before = await names(synced.id);
    const { secret } = await api.createAppPassword('phone sync');
    const basic = `Basic ${btoa(`${username}:${secret}`)}`;
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`/dav/Synced/f${i}.txt`, {
        method: 'PUT',
        headers: { Authorization: basic },
        body: `encrypted ${i}`,
      });
      expect(res.status).toBeLessThan(300);
    }
    expect(await names(synced.id)).not.toEqual(before);

    const wrapper = shell();
    await until(() => $('alert') !== null);
    expect($('alert-text')?.textContent).toMatch(/^phone sync · WebDAV changed 1\d files in \/Synced at /);

    $('alert-undo')!.click();
    const said = await confirm('Restore');
    expect(said).toContain('Undo the changes of phone sync · WebDAV?');
    expect(said).toContain('Nothing is deleted.');
    await until(() => $('restore-status')?.dataset.state === 'done');
    expect(Number($('restore-restored')?.dataset.n)).toBeGreaterThanOrEqual(12);
    expect(await names(synced.id)).toEqual(before);
    // Once undone the server closes the alert; here it stays, undone, so its app password can
    // still be revoked.
    await until(() => $('alert-undo') === null);
    expect($('alert')?.dataset.undone).toBe('true');
    expect($('alert')?.textContent).toContain('These changes were undone');
    expect((await api.alerts()).items).toHaveLength(0);
    expect($('alert-revoke')?.textContent?.trim()).toBe('Revoke “phone sync”');
    $('alert-revoke')!.click();
    await confirm('Revoke');
    await until(() => $('alert-revoke') === null);
    expect((await api.listAppPasswords()).items.map((p) => p.name)).not.toContain('phone sync');
    const locked = await fetch('/dav/Synced/f0.txt', {
      method: 'PUT',
      headers: { Authorization: basic },
      body: 'x',
    });
    expect(locked.status).toBe(401);
    $('alert-dismiss')!.click();
    await until(() => $('alert') === null);
    expect((await api.alerts()).items).toHaveLength(0);
    wrapper.unmount();
  });
  it('the breadcrumbs ask again after a restore: a folder above renamed back shows its name', async () => {
    const top = (await api.createFolder('Top')).file;
    const inner = (await api.createFolder('Inner', top.id)).file;
    const scope = effectScope();
    const path = scope.run(() => useFolderPath(ref<string | null>(inner.id)))!;
    await until(() => path.chain.value.map((f) => f.name).join('/') === 'Top/Inner');
    await api.updateFile(top.id, { name: 'Top.locked' });
    forgetAllFolders();
    await path.refresh();
    // Cached as it is now: only the restore's own forgetting can show the name it gets back.
    expect(path.chain.value.map((f) => f.name)).toEqual(['Top.locked', 'Inner']);
    const renamed = (await api.history({ folderId: top.id })).items.find((e) => e.action === 'renamed')!;
    const at = justBefore(renamed.at);
    expect(
      await useRestoreStore().follow(() => api.restore({ folderId: null, at }), { folder: null, at }),
    ).not.toBeNull();
    await path.refresh();
    expect(path.chain.value.map((f) => f.name)).toEqual(['Top', 'Inner']);
    scope.stop();
  });
});
