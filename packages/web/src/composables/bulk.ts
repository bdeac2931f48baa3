import type { FileEntry } from '@dfs/shared';
import { useMessage } from 'naive-ui';
import { errorText } from './errors.ts';

/**
 * Runs an operation on several files one at a time. A failure is shown under the file's name and
 * doesn't stop the rest; the files it worked for come back. Call during component setup.
 */
export function useForEachFile() {
  const message = useMessage();
  return async function forEachFile(
    files: readonly FileEntry[],
    op: (f: FileEntry) => Promise<unknown>,
  ): Promise<FileEntry[]> {
    const done: FileEntry[] = [];
    for (const f of files) {
      try {
        await op(f);
        done.push(f);
      } catch (err) {
        message.error(`${f.name}: ${errorText(err)}`);
      }
    }
    return done;
  };
}
