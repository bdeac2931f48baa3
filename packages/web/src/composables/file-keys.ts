import type { FileEntry } from '@dfs/shared';
import type { Ref } from 'vue';
import type { useSelection } from './selection.ts';

export interface FileKeyActions {
  open: (f: FileEntry) => void;
  rename: (f: FileEntry) => void;
  details: (f: FileEntry) => void;
  trash: (files: FileEntry[]) => void;
  up: () => void;
  /** True while something else owns the keyboard (an inline rename). */
  busy: () => boolean;
}

function isTyping(ev: KeyboardEvent): boolean {
  const el = ev.target as HTMLElement | null;
  return !!el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.isContentEditable);
}

/**
 * The file table's keys, as in desktop file managers: arrows select, Shift extends, Ctrl only
 * moves the focus ring; Space toggles, Enter opens, F2 renames, Delete trashes, Backspace goes up.
 */
export function fileKeyHandler(
  items: Ref<FileEntry[]>,
  selection: ReturnType<typeof useSelection>,
  actions: FileKeyActions,
): (ev: KeyboardEvent) => void {
  const { cursor, selected, setCursor } = selection;
  return (ev) => {
    if (isTyping(ev) || actions.busy()) return;
    const row = items.value[cursor.value];
    const mod = ev.ctrlKey || ev.metaKey;
    const how = ev.shiftKey ? 'extend' : mod ? 'move' : 'single';
    switch (ev.key) {
      case 'ArrowDown':
        setCursor(cursor.value + 1, how);
        break;
      case 'ArrowUp':
        setCursor(cursor.value < 0 ? 0 : cursor.value - 1, how);
        break;
      case 'Home':
        setCursor(0, how);
        break;
      case 'End':
        setCursor(items.value.length - 1, how);
        break;
      case ' ':
        if (cursor.value < 0) setCursor(0);
        setCursor(cursor.value, 'toggle');
        break;
      case 'Enter':
        if (row) actions.open(row);
        break;
      case 'F2':
        if (row) actions.rename(row);
        break;
      case 'i':
        if (mod || !row) return;
        actions.details(row);
        break;
      case 'Delete':
        if (selected.value.length > 0) actions.trash(selected.value);
        else if (row) actions.trash([row]);
        break;
      case 'Escape':
        selection.clear();
        break;
      case 'Backspace':
        actions.up();
        break;
      case 'a':
      case 'A':
        if (!mod) return;
        selection.selectAll();
        break;
      default:
        return;
    }
    ev.preventDefault();
  };
}
