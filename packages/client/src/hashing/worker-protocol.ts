/**
 * Messages between the main thread (`WorkerHashPool`) and hash workers (`runHashWorker`).
 *
 * One worker keeps the incremental SHA-1 of a file (`sha1-*` ops, processed in order); the
 * others read pieces and take their CRC-32C (`crc`). A piece comes as bytes or as a Blob, which
 * the worker reads itself, so the page's thread never holds it. A worker entry file is just:
 *
 * ```ts
 * // hash.worker.ts
 * import { runHashWorker } from '@dfs/client';
 * runHashWorker(self);
 * ```
 */
import { createHasher } from './create.ts';
import { webCryptoAvailable, webCryptoSha1 } from './sha1-bytes.ts';
import type { Hasher, IncrementalDigest } from './types.ts';

/** A piece of a file: its bytes (transferred), or a Blob slice the worker reads. */
export type PieceInput = { data: Uint8Array; blob?: undefined } | { blob: Blob; data?: undefined };

export type HashWorkerRequest =
  /** Start an incremental SHA-1 for `job`. No reply. */
  | { op: 'sha1-start'; job: number }
  /** Feed the next piece of `job`; with `crc` the reply also carries the piece's CRC-32C. */
  | ({ op: 'sha1-update'; id: number; job: number; crc?: boolean } & PieceInput)
  /** Finish `job`; the reply carries `sha1`. */
  | { op: 'sha1-digest'; id: number; job: number }
  /** Forget `job` (aborted). No reply. */
  | { op: 'sha1-drop'; job: number }
  /**
   * CRC-32C of one piece; the reply carries `crc32c`, and with `back` the piece's bytes
   * (transferred) for the SHA-1 worker.
   */
  | ({ op: 'crc'; id: number; back?: boolean } & PieceInput)
  /**
   * SHA-1 of a whole (small) Blob, read in the worker: the page's thread never touches the bytes.
   * With `prefix`, of its UTF-8 bytes followed by the Blob's (an instant-upload proof). The reply
   * carries `sha1`.
   */
  | { op: 'sha1-blob'; id: number; blob: Blob; prefix?: string };

export type HashWorkerResponse =
  | { id: number; ok: true; sha1?: string; crc32c?: number; data?: Uint8Array }
  | { id: number; ok: false; error: string };

export interface MessageEventLike {
  data: unknown;
}

/** What `runHashWorker` needs from a worker's global scope (`self` in a dedicated worker). */
export interface HashWorkerScope {
  /** `transfer` moves a piece's bytes back to the page instead of copying them. */
  postMessage(message: HashWorkerResponse, options?: { transfer?: Transferable[] }): void;
  addEventListener(type: 'message', listener: (ev: MessageEventLike) => void): void;
}

export interface RunHashWorkerOptions {
  /** Backend preference inside the worker (default: wasm with JS fallback). */
  prefer?: 'wasm' | 'js';
  /** A ready hasher (tests); overrides `prefer`. */
  hasher?: Hasher | Promise<Hasher>;
}

/** The bytes of a piece: given, or read from its Blob (the read started when the message came). */
async function bytesOf(msg: PieceInput, read: Promise<ArrayBuffer> | null): Promise<Uint8Array> {
  if (msg.data) return msg.data;
  const bytes = new Uint8Array(await read!);
  if (bytes.byteLength !== msg.blob.size) {
    throw new Error(
      `read ${bytes.byteLength} bytes of a ${msg.blob.size}-byte piece (the file changed while reading)`,
    );
  }
  return bytes;
}

/** Serves hash requests on `scope` until the worker is terminated. */
export function runHashWorker(scope: HashWorkerScope, options: RunHashWorkerOptions = {}): void {
  const hasherReady = Promise.resolve(options.hasher ?? createHasher({ prefer: options.prefer ?? 'wasm' }));
  const jobs = new Map<number, Promise<IncrementalDigest>>();
  // One chain: messages are handled strictly in arrival order, even while the hasher loads.
  let chain: Promise<void> = Promise.resolve();

  const handle = async (msg: HashWorkerRequest, read: Promise<ArrayBuffer> | null): Promise<void> => {
    const hasher = await hasherReady;
    switch (msg.op) {
      case 'sha1-start': {
        const p = hasher.createSha1();
        p.catch(() => {});
        jobs.set(msg.job, p);
        return;
      }
      case 'sha1-drop':
        jobs.delete(msg.job);
        return;
      case 'sha1-update': {
        const h = await jobs.get(msg.job);
        if (!h) throw new Error(`unknown hash job ${msg.job}`);
        const bytes = await bytesOf(msg, read);
        h.update(bytes);
        scope.postMessage({ id: msg.id, ok: true, ...(msg.crc ? { crc32c: hasher.crc32c(bytes) } : {}) });
        return;
      }
      case 'sha1-digest': {
        const h = await jobs.get(msg.job);
        if (!h) throw new Error(`unknown hash job ${msg.job}`);
        jobs.delete(msg.job);
        scope.postMessage({ id: msg.id, ok: true, sha1: h.digest() });
        return;
      }
      case 'crc': {
        const bytes = await bytesOf(msg, read);
        const crc32c = hasher.crc32c(bytes);
        if (msg.back)
          scope.postMessage({ id: msg.id, ok: true, crc32c, data: bytes }, { transfer: [bytes.buffer] });
        else scope.postMessage({ id: msg.id, ok: true, crc32c });
        return;
      }
      case 'sha1-blob': {
        let bytes = new Uint8Array(await msg.blob.arrayBuffer());
        if (msg.prefix !== undefined) {
          const prefix = new TextEncoder().encode(msg.prefix);
          const all = new Uint8Array(prefix.byteLength + bytes.byteLength);
          all.set(prefix);
          all.set(bytes, prefix.byteLength);
          bytes = all;
        }
        const sha1 = webCryptoAvailable() ? await webCryptoSha1(bytes) : hasher.sha1(bytes);
        scope.postMessage({ id: msg.id, ok: true, sha1 });
        return;
      }
    }
  };

  scope.addEventListener('message', (ev) => {
    const msg = ev.data as HashWorkerRequest;
    // A piece's Blob is read as soon as it arrives, so reading the next pieces overlaps hashing
    // this one (the pool bounds how many are in flight).
    const read = 'blob' in msg && msg.blob && msg.op !== 'sha1-blob' ? msg.blob.arrayBuffer() : null;
    read?.catch(() => {}); // reported when the piece's turn comes
    chain = chain
      .then(() => handle(msg, read))
      .catch((err: unknown) => {
        if ('id' in msg) {
          scope.postMessage({
            id: msg.id,
            ok: false,
            error: err instanceof Error ? err.message : String(err),
          });
        }
      });
  });
}
