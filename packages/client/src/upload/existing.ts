import type { FileEntry } from '@dfs/shared';

/** Lists a folder (null: the root), every page of it. */
export type ListFolder = (parentId: string | null) => Promise<readonly FileEntry[]>;

/**
 * What the target folders already hold, listed once per folder and kept for one batch of
 * uploads: an upload that finds a file of its name, size and SHA-1 there skips (see the
 * `skipIdentical` upload option) instead of adding a ` (1)` copy. Sending a folder again after
 * an interruption then sends only what did not arrive. The server's naming rule is unchanged
 * (an upload never replaces a file): this is the client declining to send what is already there.
 */
export class FolderIndex {
  readonly #list: ListFolder;
  readonly #folders = new Map<string, Promise<Map<string, FileEntry>>>();

  constructor(list: ListFolder) {
    this.#list = list;
  }

  /** The file called `name` in folder `parentId` when the folder was first listed, or null. */
  async find(parentId: string | null, name: string): Promise<FileEntry | null> {
    const key = parentId ?? '';
    let folder = this.#folders.get(key);
    if (!folder) {
      folder = this.#list(parentId).then((items) => {
        const byName = new Map<string, FileEntry>();
        for (const f of items) if (f.kind === 'file') byName.set(f.name, f);
        return byName;
      });
      this.#folders.set(key, folder);
      // A failed listing is asked again by the next upload, not remembered.
      folder.catch(() => {
        if (this.#folders.get(key) === folder) this.#folders.delete(key);
      });
    }
    return (await folder).get(name) ?? null;
  }
}
