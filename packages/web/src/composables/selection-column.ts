import { type DataTableBaseColumn, NCheckbox } from 'naive-ui';
import { computed, h, type Ref } from 'vue';

/**
 * A table's check-box column, named for screen readers. Naive's own selection column renders
 * check boxes whose `aria-labelledby` points at a label that is never rendered, so each one reads
 * as an unnamed "check box"; these carry "Select <name>" and "Select all" instead.
 */
export function selectionColumn<T extends { id: string; name: string }>(opts: {
  t: (key: string, named?: Record<string, unknown>) => string;
  items: Ref<T[]>;
  checked: Ref<string[]>;
  /** A Shift-click on a row's box, which selects the range up to it (as Naive's column did). */
  onRange?: (index: number) => void;
}): DataTableBaseColumn<T> {
  const { t, items, checked } = opts;
  // One Set per change of the selection, not a scan of it per rendered row.
  const set = computed(() => new Set(checked.value));
  const all = computed(() => items.value.length > 0 && items.value.every((f) => set.value.has(f.id)));
  const some = computed(() => !all.value && items.value.some((f) => set.value.has(f.id)));
  return {
    key: '__select',
    width: 40,
    className: 'select-cell',
    title: () =>
      h(NCheckbox, {
        checked: all.value,
        indeterminate: some.value,
        'aria-label': t('files.selectAll'),
        'data-testid': 'select-all',
        onUpdateChecked: (on: boolean) => {
          checked.value = on ? items.value.map((f) => f.id) : [];
        },
      }),
    render: (f, index) =>
      h(NCheckbox, {
        checked: set.value.has(f.id),
        'aria-label': t('files.selectOne', { name: f.name }),
        onUpdateChecked: (on: boolean, e: MouseEvent | KeyboardEvent) => {
          if (e.shiftKey && opts.onRange) opts.onRange(index);
          else checked.value = on ? [...checked.value, f.id] : checked.value.filter((id) => id !== f.id);
        },
      }),
  };
}
