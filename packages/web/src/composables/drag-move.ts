import type { FileEntry } from '@dfs/shared';
import { type Ref, shallowRef } from 'vue';

/** The drag's own type: the page's file-drop overlay only reacts to drags carrying `Files`. */
const DRAG_TYPE = 'application/x-dfs-entries';
const HOVER_CLASS = 'drop-target';

/**
 * Moving by drag and drop, as in desktop file managers: drag a row (or the selection it belongs
 * to) onto a folder row or a breadcrumb. A folder never accepts itself or what it already holds.
 */
export function useDragMove(options: {
  selected: Ref<FileEntry[]>;
  move: (files: FileEntry[], targetId: string | null) => void;
}) {
  const dragging = shallowRef<FileEntry[] | null>(null);

  function source(f: FileEntry): Record<string, unknown> {
    return {
      draggable: true,
      onDragstart: (e: DragEvent) => {
        const picked = options.selected.value;
        const files = picked.some((x) => x.id === f.id) ? [...picked] : [f];
        dragging.value = files;
        if (e.dataTransfer) {
          e.dataTransfer.effectAllowed = 'move';
          e.dataTransfer.setData(DRAG_TYPE, JSON.stringify(files.map((x) => x.id)));
          // Something readable if it is dropped outside the app.
          e.dataTransfer.setData('text/plain', files.map((x) => x.name).join('\n'));
        }
      },
      onDragend: () => {
        dragging.value = null;
      },
    };
  }

  function accepts(targetId: string | null): boolean {
    const files = dragging.value;
    return !!files && files.every((x) => x.id !== targetId && x.parentId !== targetId);
  }

  function target(targetId: string | null): Record<string, unknown> {
    const leave = (e: DragEvent) => (e.currentTarget as HTMLElement).classList.remove(HOVER_CLASS);
    return {
      onDragover: (e: DragEvent) => {
        if (!e.dataTransfer?.types.includes(DRAG_TYPE) || !accepts(targetId)) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = 'move';
        (e.currentTarget as HTMLElement).classList.add(HOVER_CLASS);
      },
      onDragleave: leave,
      onDrop: (e: DragEvent) => {
        leave(e);
        const files = dragging.value;
        if (!files || !accepts(targetId)) return;
        dragging.value = null;
        e.preventDefault();
        options.move(files, targetId);
      },
    };
  }

  return { dragging, source, target };
}
