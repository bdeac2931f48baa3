import { createHash } from 'node:crypto';
import type { FileEntry } from '@dfs/shared';
import { flushPromises, mount } from '@vue/test-utils';
import { NDialogProvider, NMessageProvider } from 'naive-ui';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { defineComponent, h } from 'vue';
import { api } from '../src/api/index.ts';
import VersionsSection from '../src/components/VersionsSection.vue';
import { i18n } from '../src/i18n/index.ts';

const until = (check: () => boolean) => vi.waitUntil(check, { timeout: 5000, interval: 20 });
const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');
const $$ = (testId: string) => [...document.body.querySelectorAll<HTMLElement>(`[data-testid="${testId}"]`)];

/** Clicks the confirm dialog's positive button (Naive renders it in the body). */
async function confirm(label: string): Promise<void> {
  await until(() => document.querySelector('.n-dialog') !== null);
  const button = [...document.querySelectorAll<HTMLButtonElement>('.n-dialog button')].find(
    (b) => b.textContent?.trim() === label,
  );
  expect(button).toBeDefined();
  button!.click();
}

describe('the versions in the details panel, against a real server', () => {
  const username = 'web-versions';
  let file: FileEntry;
  beforeAll(async () => {
    await api.signup(username, 'correct horse battery');
    await api.signin(username, 'correct horse battery');
    file = (await api.uploadSimple(new File(['first words'], 'story.txt'))).file;
    // The second content comes through WebDAV with an app password: the list names both.
    const { secret } = await api.createAppPassword('laptop');
    const res = await fetch('/dav/story.txt', {
      method: 'PUT',
      headers: { Authorization: `Basic ${btoa(`${username}:${secret}`)}` },
      body: 'second words',
    });
    expect(res.ok).toBe(true);
    file = (await api.listFiles()).items.find((f) => f.id === file.id)!;
  });
  afterAll(() => {
    document.body.innerHTML = '';
  });

  function open(f: FileEntry) {
    const restored: FileEntry[] = [];
    const Host = defineComponent({
      setup: () => () =>
        h(NMessageProvider, null, {
          default: () =>
            h(NDialogProvider, null, {
              default: () => h(VersionsSection, { file: f, onRestored: (x: FileEntry) => restored.push(x) }),
            }),
        }),
    });
    const wrapper = mount(Host, { global: { plugins: [i18n] }, attachTo: document.body });
    return { wrapper, restored };
  }

  it('lists the versions with who made them, restores one and deletes one', async () => {
    const { wrapper, restored } = open(file);
    await until(() => $$('version').length === 2);
    const [current, older] = $$('version');
    expect(current!.dataset.sha1).toBe(sha1('second words'));
    expect(current!.querySelector('[data-testid=version-current]')).not.toBeNull();
    expect(current!.querySelector('[data-testid=version-actor]')?.textContent).toBe('by laptop · WebDAV');
    expect(current!.querySelector('[data-testid=version-restore]')).toBeNull();
    expect(older!.dataset.sha1).toBe(sha1('first words'));
    expect(older!.querySelector('[data-testid=version-current]')).toBeNull();
    expect(older!.querySelector('[data-testid=version-actor]')?.textContent).toBe('by web');
    // The exact time is on hover.
    expect(older!.querySelector('[data-testid=version-time]')?.getAttribute('title')).toMatch(/\d/);

    older!.querySelector<HTMLElement>('[data-testid=version-restore]')!.click();
    await confirm('Restore');
    await until(() => restored.length === 1);
    expect(restored[0]!.sha1).toBe(sha1('first words'));
    expect(await (await api.download(file.id)).text()).toBe('first words');
    // The list follows: the restored content is current, the replaced one a version.
    await until(() => $$('version')[0]?.dataset.sha1 === sha1('first words'));
    expect($$('version').map((v) => v.dataset.sha1)).toEqual([sha1('first words'), sha1('second words')]);

    $$('version')[1]!.querySelector<HTMLElement>('[data-testid=version-delete]')!.click();
    await confirm('Delete this version');
    await until(() => $$('version').length === 1);
    await flushPromises();
    expect($$('versions-empty')).toHaveLength(1);
    expect((await api.listVersions(file.id)).items).toHaveLength(1);
    wrapper.unmount();
  });
});
