/** A file to upload and the folders (relative to the drop target) it goes in. */
export interface PickedFile {
  file: File;
  dirs: string[];
}

export interface PickedBatch {
  files: PickedFile[];
  /** Every folder to create, parents before children, including empty ones. */
  folders: string[][];
}

function addFolderChain(folders: Map<string, string[]>, dirs: string[]): void {
  for (let i = 1; i <= dirs.length; i++) {
    const chain = dirs.slice(0, i);
    const key = chain.join('/');
    if (!folders.has(key)) folders.set(key, chain);
  }
}

function finish(files: PickedFile[], folders: Map<string, string[]>): PickedBatch {
  for (const f of files) addFolderChain(folders, f.dirs);
  const list = [...folders.values()].sort((a, b) => a.length - b.length);
  return { files, folders: list };
}

/** From an <input type=file> (with or without webkitdirectory). */
export function fromFileList(list: FileList | File[]): PickedBatch {
  const files: PickedFile[] = [];
  for (const file of Array.from(list)) {
    const rel = file.webkitRelativePath;
    const parts = rel ? rel.split('/').filter(Boolean) : [];
    files.push({ file, dirs: parts.slice(0, -1) });
  }
  return finish(files, new Map());
}

function readAllEntries(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  // readEntries hands out at most ~100 entries per call; keep calling until it returns none.
  return new Promise((resolve, reject) => {
    const out: FileSystemEntry[] = [];
    const next = () =>
      reader.readEntries((batch) => {
        if (batch.length === 0) resolve(out);
        else {
          out.push(...batch);
          next();
        }
      }, reject);
    next();
  });
}

function entryFile(entry: FileSystemFileEntry): Promise<File> {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

/**
 * From a drop. `webkitGetAsEntry` must be called while the drop event is being dispatched (the
 * DataTransfer is emptied afterwards), so the entries are taken synchronously and walked later.
 */
export function entriesFromDrop(dt: DataTransfer): { entries: FileSystemEntry[]; plain: File[] } {
  const entries: FileSystemEntry[] = [];
  const plain: File[] = [];
  const items = dt.items ? Array.from(dt.items) : [];
  for (const item of items) {
    if (item.kind !== 'file') continue;
    const entry = typeof item.webkitGetAsEntry === 'function' ? item.webkitGetAsEntry() : null;
    if (entry) entries.push(entry);
    else {
      const f = item.getAsFile();
      if (f) plain.push(f);
    }
  }
  if (items.length === 0) plain.push(...Array.from(dt.files));
  return { entries, plain };
}

export async function fromDropEntries(entries: FileSystemEntry[], plain: File[]): Promise<PickedBatch> {
  const files: PickedFile[] = plain.map((file) => ({ file, dirs: [] }));
  const folders = new Map<string, string[]>();
  const walk = async (entry: FileSystemEntry, dirs: string[]): Promise<void> => {
    if (entry.isFile) {
      files.push({ file: await entryFile(entry as FileSystemFileEntry), dirs });
    } else if (entry.isDirectory) {
      const here = [...dirs, entry.name];
      addFolderChain(folders, here);
      const children = await readAllEntries((entry as FileSystemDirectoryEntry).createReader());
      for (const child of children) await walk(child, here);
    }
  };
  for (const e of entries) await walk(e, []);
  return finish(files, folders);
}
