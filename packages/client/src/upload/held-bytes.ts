/**
 * The bytes a File was made from, for the Files the upload core makes from bytes it has read.
 *
 * Node's fetch (node/fetch.ts) sends those bytes instead of reading the File back: reading a Blob
 * in Node copies it twice (out of the Blob store, then into one ArrayBuffer) and leaves both
 * copies to the collector — for every small file the CLI uploads, more CPU than its SHA-1.
 * Browsers send their Files themselves and never look here.
 */
const held = new WeakMap<Blob, Uint8Array>();

/** Makes a File of bytes the upload core has read (`UploadOptions.fileFromBytes`). */
export type FileFromBytes = (bytes: Uint8Array, name: string, type?: string) => File;

/** The default: a standard File (browsers, and any runtime without a better one). */
export const fileFromBytes: FileFromBytes = (bytes, name, type) =>
  holdBytes(new File([bytes as Uint8Array<ArrayBuffer>], name, type ? { type } : {}), bytes);

/** Records that `file` was made from `bytes` (which it must hold unchanged); returns `file`. */
export function holdBytes<F extends File>(file: F, bytes: Uint8Array): F {
  held.set(file, bytes);
  return file;
}

/** The bytes `blob` was made from by a `FileFromBytes`, if it was. */
export function heldBytes(blob: Blob): Uint8Array | undefined {
  return held.get(blob);
}

/**
 * Appends a file part. A held File goes in as it is, under its own name: a name given to FormData
 * makes it wrap the File in a new one, which `heldBytes` would not know and which, over Node's
 * `nodeFileFromBytes`, would read as empty. Held bytes wanted under another name get a File of
 * their own. Any other File gets the name explicitly: a browser otherwise sends a File picked with
 * a folder under its relative path ("album/sub/a.bin").
 */
export function appendFile(form: FormData, field: string, blob: Blob, name: string): void {
  const bytes = held.get(blob);
  if (bytes === undefined) form.append(field, blob, name);
  else if ((blob as File).name === name) form.append(field, blob);
  else form.append(field, fileFromBytes(bytes, name, blob.type));
}
