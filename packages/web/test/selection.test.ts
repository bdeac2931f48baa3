import type { FileEntry } from '@dfs/shared';
import { describe, expect, it } from 'vitest';
import { ref } from 'vue';
import { useSelection } from '../src/composables/selection.ts';

const entry = (id: string): FileEntry => ({
  id,
  name: id,
  kind: 'file',
  parentId: null,
  size: 1,
  mime: null,
  sha1: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  mtime: '2026-01-01T00:00:00.000Z',
});

describe('the file table selection', () => {
  const setup = () => {
    const items = ref(['a', 'b', 'c', 'd', 'e'].map(entry));
    const scrolled: number[] = [];
    return { items, scrolled, s: useSelection(items, (i) => scrolled.push(i)) };
  };

  it('selects like a desktop file manager: click, Shift-extend, Ctrl-toggle', () => {
    const { s, scrolled } = setup();
    s.setCursor(1, 'single');
    expect(s.checked.value).toEqual(['b']);
    s.setCursor(3, 'extend');
    expect(s.checked.value).toEqual(['b', 'c', 'd']);
    // Extending backwards past the anchor selects the other side of it.
    s.setCursor(0, 'extend');
    expect(s.checked.value).toEqual(['a', 'b']);
    s.setCursor(4, 'toggle');
    expect(s.selected.value.map((f) => f.id)).toEqual(['a', 'b', 'e']);
    s.setCursor(4, 'toggle');
    expect(s.checked.value).toEqual(['a', 'b']);
    // A plain move changes only the cursor.
    s.setCursor(2, 'move');
    expect(s.checked.value).toEqual(['a', 'b']);
    expect(s.cursor.value).toBe(2);
    expect(scrolled.at(-1)).toBe(2);
  });

  it('keeps the cursor on the rows and forgets rows that are gone', () => {
    const { s, items } = setup();
    s.setCursor(99, 'single');
    expect(s.cursor.value).toBe(4);
    s.selectAll();
    items.value = items.value.slice(0, 2);
    s.prune();
    expect(s.checked.value).toEqual(['a', 'b']);
    expect(s.cursor.value).toBe(1);
    s.clear();
    expect(s.selected.value).toEqual([]);
    // After a clear, Shift starts a new range from the cursor.
    s.setCursor(0, 'extend');
    expect(s.checked.value).toEqual(['a']);
  });

  it('does nothing on an empty list', () => {
    const items = ref<FileEntry[]>([]);
    const s = useSelection(items);
    s.setCursor(0, 'single');
    expect(s.cursor.value).toBe(-1);
    expect(s.checked.value).toEqual([]);
  });
});
