import type { FileEntry } from '@dfs/shared';
import { flushPromises, mount } from '@vue/test-utils';
import { NMessageProvider } from 'naive-ui';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { defineComponent, h } from 'vue';
import { api } from '../src/api/index.ts';
import ShareDialog from '../src/components/ShareDialog.vue';
import { i18n } from '../src/i18n/index.ts';

const until = (check: () => boolean) => vi.waitUntil(check, { timeout: 5000, interval: 20 });

const $ = (testId: string) => document.body.querySelector<HTMLElement>(`[data-testid="${testId}"]`);

describe('the share dialog, against a real server', () => {
  let file: FileEntry;
  beforeAll(async () => {
    await api.signup('web-sharer', 'correct horse battery');
    await api.signin('web-sharer', 'correct horse battery');
    file = (await api.uploadSimple(new File(['shared bytes'], 'report.pdf'))).file;
  });
  afterAll(() => {
    document.body.innerHTML = '';
  });

  function open(f: FileEntry | null) {
    const Host = defineComponent({
      setup: () => () => h(NMessageProvider, null, { default: () => h(ShareDialog, { file: f }) }),
    });
    return mount(Host, { global: { plugins: [i18n] }, attachTo: document.body });
  }

  it('makes a link with a password, shows it, and the server has it', async () => {
    const wrapper = open(file);
    await until(() => $('share-create') !== null);
    const password = $('share-password')?.querySelector('input') as HTMLInputElement;
    password.value = 'open sesame';
    password.dispatchEvent(new Event('input'));
    $('share-create')!.click();
    await until(() => $('share-url') !== null);
    await flushPromises();
    const url = ($('share-url')!.querySelector('input') as HTMLInputElement).value;
    const { items } = await api.listShares();
    const made = items.find((s) => s.fileId === file.id)!;
    expect(made).toBeDefined();
    expect(url).toBe(made.url);
    expect(made.hasPassword).toBe(true);
    // The public side of the link asks for the password.
    expect((await api.getPublicShare(made.token)).hasPassword).toBe(true);
    wrapper.unmount();
  });

  it('makes an upload request for a folder, with a size limit', async () => {
    const folder = (await api.createFolder('Inbox')).file;
    const wrapper = open(folder);
    await until(() => $('share-max-bytes') !== null);
    // A folder's dialog offers no download limit: its link takes files, it serves none.
    expect($('share-max')).toBeNull();
    const limit = $('share-max-bytes')!.querySelector('input') as HTMLInputElement;
    limit.value = '2';
    limit.dispatchEvent(new Event('input'));
    limit.dispatchEvent(new Event('blur'));
    $('share-create')!.click();
    await until(() => $('share-url') !== null);
    await flushPromises();
    const { items } = await api.listShares();
    const made = items.find((s) => s.fileId === folder.id)!;
    expect(made).toMatchObject({ kind: 'upload', maxBytes: 2 * 1024 * 1024, bytesReceived: 0 });
    expect(made.url).toMatch(/\/drop\/[^/]+$/);
    expect(($('share-url')!.querySelector('input') as HTMLInputElement).value).toBe(made.url);
    expect(await api.getPublicShare(made.token)).toMatchObject({ kind: 'upload', name: 'Inbox' });
    wrapper.unmount();
  });

  it('revokes a link from the list', async () => {
    const before = (await api.listShares()).items.filter((s) => s.fileId === file.id);
    expect(before.length).toBeGreaterThan(0);
    const wrapper = open(file);
    await until(
      () => document.body.querySelectorAll('[data-testid="share-revoke"]').length === before.length,
    );
    (document.body.querySelector('[data-testid="share-revoke"]') as HTMLElement).click();
    // A confirmation pops up first; its positive button revokes.
    await until(() => document.body.querySelector('.n-popconfirm__action .n-button--primary-type') !== null);
    (document.body.querySelector('.n-popconfirm__action .n-button--primary-type') as HTMLElement).click();
    await until(
      () => document.body.querySelectorAll('[data-testid="share-revoke"]').length === before.length - 1,
    );
    expect((await api.listShares()).items.filter((s) => s.fileId === file.id)).toHaveLength(
      before.length - 1,
    );
    wrapper.unmount();
  });
});
