import { type FileFromBytes, fileFromBytes, holdBytes } from '../upload/held-bytes.ts';

/**
 * A File over bytes already in memory that Node does not copy.
 *
 * Node's File constructor copies its parts into the Blob store; for every small file the CLI
 * uploads that copy cost more CPU than the file's SHA-1 (about a fifth of the client's CPU with
 * many small files). Here the bytes stay where they are: `size` and every reading method answer
 * from them, so FormData, Node's fetch and form-data-encoder see the file as it is, and
 * node/fetch.ts sends the bytes themselves. The bytes must not change while the File is in use.
 *
 * Node only: a browser reads a File's contents from its own store, which here is empty.
 */
class HeldFile extends File {
  readonly #bytes: Uint8Array<ArrayBuffer>;

  constructor(bytes: Uint8Array, name: string, type?: string) {
    super([], name, type ? { type } : {});
    this.#bytes = bytes as Uint8Array<ArrayBuffer>;
    // Blob's `size` is a getter on its prototype that reads the (empty) store.
    Object.defineProperty(this, 'size', { value: bytes.byteLength, enumerable: true });
  }

  override arrayBuffer(): Promise<ArrayBuffer> {
    return Promise.resolve(this.#bytes.slice().buffer);
  }

  override bytes(): Promise<Uint8Array<ArrayBuffer>> {
    return Promise.resolve(this.#bytes.slice());
  }

  override text(): Promise<string> {
    return Promise.resolve(new TextDecoder().decode(this.#bytes));
  }

  override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.#copy().stream();
  }

  override slice(start?: number, end?: number, contentType?: string): Blob {
    return this.#copy().slice(start, end, contentType);
  }

  /** Rare paths (a stream, a slice) get a standard Blob, copied once. */
  #copy(): Blob {
    return new Blob([this.#bytes], { type: this.type });
  }
}

let holds: boolean | undefined;

/**
 * Whether this Node takes a HeldFile as it is: the size it gives itself is the one read, and
 * FormData keeps the File itself rather than a copy (a copy would read Node's empty store and
 * send an empty file). Neither is promised by Node, so it is checked once, on first use; the
 * client's tests assert it holds on the Node they run on.
 */
export function heldFilesWork(): boolean {
  if (holds === undefined) {
    const probe = new HeldFile(new Uint8Array(3), 'probe');
    const form = new FormData();
    form.append('file', probe);
    holds = probe.size === 3 && form.get('file') === probe;
  }
  return holds;
}

/**
 * `UploadOptions.fileFromBytes` for Node: Files that hold the bytes without copying them, or,
 * on a Node where such Files would not pass as they are (`heldFilesWork`), standard Files:
 * a copy each, slower but whole.
 */
export function createNodeFileFromBytes(works: () => boolean = heldFilesWork): FileFromBytes {
  return (bytes, name, type) =>
    works() ? holdBytes(new HeldFile(bytes, name, type), bytes) : fileFromBytes(bytes, name, type);
}

export const nodeFileFromBytes: FileFromBytes = createNodeFileFromBytes();
