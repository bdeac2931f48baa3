import type { FileEntry } from '@dfs/shared';
import { nameProblem } from '@dfs/shared';
import { useMessage } from 'naive-ui';
import { nextTick, type Ref, ref } from 'vue';
import { useI18n } from 'vue-i18n';
import { api } from '../api/index.ts';
import { errorText } from './errors.ts';

interface Focusable {
  focus: () => void;
  select: () => void;
}

/**
 * Renaming in place, as in desktop file managers: F2 or the menu opens an input on the row, Enter
 * or leaving it saves, Escape cancels. A name the server would refuse is caught before asking it.
 */
export function useInlineRename(
  items: Ref<FileEntry[]>,
  saved: (updated: FileEntry) => void,
  /** Where the keyboard focus goes back to afterwards (the table). */
  refocus: () => void,
) {
  const { t } = useI18n();
  const message = useMessage();
  const editingId = ref<string | null>(null);
  const editName = ref('');
  const input = ref<Focusable | null>(null);
  let saving = false;

  function start(f: FileEntry): void {
    editingId.value = f.id;
    editName.value = f.name;
    void nextTick().then(() => {
      input.value?.focus();
      input.value?.select();
    });
  }

  async function commit(): Promise<void> {
    const id = editingId.value;
    if (!id || saving) return;
    const f = items.value.find((x) => x.id === id);
    const name = editName.value.trim();
    if (!f || name === f.name || name === '') {
      editingId.value = null;
      return;
    }
    const problem = nameProblem(name);
    if (problem) {
      message.error(t('errors.invalid_name', { message: problem }));
      return;
    }
    saving = true;
    try {
      saved((await api.updateFile(id, { name })).file);
      editingId.value = null;
      message.success(t('files.renamed'));
    } catch (err) {
      message.error(errorText(err));
    } finally {
      saving = false;
    }
    refocus();
  }

  function cancel(): void {
    editingId.value = null;
    refocus();
  }

  return { editingId, editName, input, start, commit, cancel };
}
