import type { FileEntry } from '@dfs/shared';
import { computed, type Ref, ref } from 'vue';

/** How a cursor move changes the selection, as in desktop file managers. */
export type CursorMode = 'move' | 'extend' | 'toggle' | 'single';

/**
 * The file table's selection: checked rows (by id, so they survive re-sorting and paging), the
 * keyboard cursor, and the anchor that Shift extends from. `scrollTo` keeps the cursor's row in
 * view.
 */
export function useSelection(items: Ref<FileEntry[]>, scrollTo: (index: number) => void = () => {}) {
  const checked = ref<string[]>([]);
  const cursor = ref(-1);
  let anchor = -1;

  const selected = computed(() => {
    const set = new Set(checked.value);
    return items.value.filter((f) => set.has(f.id));
  });

  function setCursor(i: number, mode: CursorMode = 'move'): void {
    const n = items.value.length;
    if (n === 0) return;
    const idx = Math.max(0, Math.min(n - 1, i));
    cursor.value = idx;
    const id = items.value[idx]!.id;
    if (mode === 'single') {
      checked.value = [id];
      anchor = idx;
    } else if (mode === 'toggle') {
      checked.value = checked.value.includes(id)
        ? checked.value.filter((x) => x !== id)
        : [...checked.value, id];
      anchor = idx;
    } else if (mode === 'extend') {
      if (anchor < 0) anchor = idx;
      const [a, b] = anchor < idx ? [anchor, idx] : [idx, anchor];
      checked.value = items.value.slice(a, b + 1).map((f) => f.id);
    }
    scrollTo(idx);
  }

  function clear(): void {
    checked.value = [];
    anchor = -1;
  }

  function selectAll(): void {
    checked.value = items.value.map((f) => f.id);
  }

  /** After the rows changed: forget checked rows that are gone and keep the cursor on a row. */
  function prune(): void {
    const ids = new Set(items.value.map((f) => f.id));
    checked.value = checked.value.filter((id) => ids.has(id));
    if (cursor.value >= items.value.length) cursor.value = items.value.length - 1;
  }

  return { checked, cursor, selected, setCursor, clear, selectAll, prune };
}
