import type { FileEntry } from '@dfs/shared';
import { flushPromises, mount } from '@vue/test-utils';
import { NDialogProvider, NMessageProvider } from 'naive-ui';
import { createPinia, setActivePinia } from 'pinia';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { defineComponent, h } from 'vue';
import { api } from '../src/api/index.ts';
import ActivityDrawer from '../src/components/ActivityDrawer.vue';
import { HISTORY_PAGE, justBefore } from '../src/composables/history.ts';
import { actorLabel } from '../src/composables/versions.ts';
import { i18n } from '../src/i18n/index.ts';

const until = (check: () => boolean) => vi.waitUntil(check, { timeout: 8000, interval: 20 });
const $$ = (testId: string, root: ParentNode = document.body) => [
  ...root.querySelectorAll<HTMLElement>(`[data-testid="${testId}"]`),
];
const text = (el: HTMLElement, testId: string) =>
  el.querySelector<HTMLElement>(`[data-testid="${testId}"]`)?.textContent?.trim() ?? null;

describe('the activity panel, against a real server', () => {
  let docs: FileEntry;
  beforeAll(async () => {
    setActivePinia(createPinia());
    await api.signup('web-activity', 'correct horse battery');
    await api.signin('web-activity', 'correct horse battery');
    docs = (await api.createFolder('Docs')).file;
    const archive = (await api.createFolder('Archive', docs.id)).file;
    const plan = (await api.uploadSimple(new File(['v1'], 'plan.txt'), { parentId: docs.id })).file;
    const memo = (await api.uploadSimple(new File(['memo'], 'memo.txt'), { parentId: docs.id })).file;
    await api.updateFile(plan.id, { name: 'plan-final.txt' });
    await api.updateFile(plan.id, { parentId: archive.id });
    await api.deleteFile(memo.id);
    // Outside the folder: never in its list.
    await api.uploadSimple(new File(['elsewhere'], 'outside.txt'));
  });
  afterAll(() => {
    document.body.innerHTML = '';
  });

  function open(folder: { id: string | null; name: string | null }) {
    const Host = defineComponent({
      setup: () => () =>
        h(NMessageProvider, null, {
          default: () => h(NDialogProvider, null, { default: () => h(ActivityDrawer, { folder }) }),
        }),
    });
    return mount(Host, { global: { plugins: [i18n] }, attachTo: document.body });
  }

  it('lists a folder’s changes newest first, with both places of a rename and a move', async () => {
    const wrapper = open({ id: docs.id, name: 'Docs' });
    await until(() => $$('event').length >= 7);
    await flushPromises();
    const events = $$('event');
    // The folder's own creation is part of its history.
    expect(events.map((e) => e.dataset.action)).toEqual([
      'trashed',
      'moved',
      'renamed',
      'created',
      'created',
      'created',
      'created',
    ]);
    const [trashed, moved, renamed] = events;
    expect(text(trashed!, 'event-action')).toBe('Moved to trash');
    expect(text(trashed!, 'event-to')).toBe('/Docs/memo.txt');
    expect(text(trashed!, 'event-from')).toBeNull();
    expect(text(moved!, 'event-from')).toBe('/Docs/plan-final.txt');
    expect(text(moved!, 'event-to')).toBe('/Docs/Archive/plan-final.txt');
    expect(text(renamed!, 'event-from')).toBe('/Docs/plan.txt');
    expect(text(renamed!, 'event-to')).toBe('/Docs/plan-final.txt');
    expect(text(renamed!, 'event-actor')).toBe('by web');
    // Relative on screen, exact on hover.
    expect(renamed!.querySelector('[data-testid=event-time]')?.getAttribute('title')).toMatch(/\d/);
    expect(document.body.textContent).not.toContain('outside.txt');
    expect(text(events[0]!, 'event-restore')).toBe('Restore folder to before this');
    expect($$('activity-more')).toHaveLength(0);
    wrapper.unmount();
  });

  it('pages with "Load more", and the whole account’s list holds every folder', async () => {
    const files = Array.from({ length: HISTORY_PAGE }, (_, i) => ({
      blob: new File([`n${i}`], `n${i}.txt`),
      name: `n${i}.txt`,
      parentId: docs.id,
    }));
    await api.uploadBatch(files);
    const wrapper = open({ id: null, name: null });
    await until(() => $$('event').length === HISTORY_PAGE);
    expect(document.body.textContent).toContain('Activity in all your files');
    expect(text($$('event')[0]!, 'event-restore')).toBe('Restore everything to before this');
    await until(() => $$('activity-more').length === 1);
    $$('activity-more')[0]!.click();
    // 50 uploads, 2 folders, 3 files, a rename, a move, a trash: 58 in all.
    await until(() => $$('event').length === HISTORY_PAGE + 8);
    await until(() => $$('activity-more').length === 0);
    expect(document.body.textContent).toContain('/outside.txt');
    wrapper.unmount();
  });

  it('names who restored: the web app, and that it was a restore', () => {
    expect(actorLabel({ type: 'session', name: 'web-activity', via: 'restore' })).toBe('web · restore');
    expect(actorLabel({ type: 'app_password', name: 'laptop', via: 'webdav' })).toBe('laptop · WebDAV');
  });

  it('restores to just before an event, never at it', () => {
    expect(justBefore('2026-12-07T10:00:00.000Z')).toBe('2026-12-07T09:59:59.999Z');
  });
});
