/**
 * Messages between the main thread (`WorkerHashPool`) and hash workers (`runHashWorker`).
 *
 * One worker keeps the incremental SHA-1 of a file (`sha1-*` ops, processed in order); the
 * others take the MD5 of whole pieces (`md5`). A worker entry file is just:
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

export type HashWorkerRequest =
  /** Start an incremental SHA-1 for `job`. No reply. */
  | { op: 'sha1-start'; job: number }
  /** Feed the next piece of `job`; with `withMd5` the reply also carries the piece's MD5. */
  | { op: 'sha1-update'; id: number; job: number; data: Uint8Array; withMd5?: boolean }
  /** Finish `job`; the reply carries `sha1`. */
  | { op: 'sha1-digest'; id: number; job: number }
  /** Forget `job` (aborted). No reply. */
  | { op: 'sha1-drop'; job: number }
  /** MD5 of one piece; the reply carries `md5`. */
  | { op: 'md5'; id: number; data: Uint8Array }
  /**
   * SHA-1 of a whole (small) Blob, read in the worker: the page's thread never touches the bytes.
   * The reply carries `sha1`.
   */
  | { op: 'sha1-blob'; id: number; blob: Blob };

export type HashWorkerResponse =
  | { id: number; ok: true; sha1?: string; md5?: string }
  | { id: number; ok: false; error: string };

export interface MessageEventLike {
  data: unknown;
}

/** What `runHashWorker` needs from a worker's global scope (`self` in a dedicated worker). */
export interface HashWorkerScope {
  postMessage(message: HashWorkerResponse): void;
  addEventListener(type: 'message', listener: (ev: MessageEventLike) => void): void;
}

export interface RunHashWorkerOptions {
  /** Backend preference inside the worker (default: wasm with JS fallback). */
  prefer?: 'wasm' | 'js';
  /** A ready hasher (tests); overrides `prefer`. */
  hasher?: Hasher | Promise<Hasher>;
}

/** Serves hash requests on `scope` until the worker is terminated. */
export function runHashWorker(scope: HashWorkerScope, options: RunHashWorkerOptions = {}): void {
  const hasherReady = Promise.resolve(options.hasher ?? createHasher({ prefer: options.prefer ?? 'wasm' }));
  const jobs = new Map<number, Promise<IncrementalDigest>>();
  // One chain: messages are handled strictly in arrival order, even while the hasher loads.
  let chain: Promise<void> = Promise.resolve();

  const handle = async (msg: HashWorkerRequest): Promise<void> => {
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
        h.update(msg.data);
        scope.postMessage({ id: msg.id, ok: true, ...(msg.withMd5 ? { md5: hasher.md5(msg.data) } : {}) });
        return;
      }
      case 'sha1-digest': {
        const h = await jobs.get(msg.job);
        if (!h) throw new Error(`unknown hash job ${msg.job}`);
        jobs.delete(msg.job);
        scope.postMessage({ id: msg.id, ok: true, sha1: h.digest() });
        return;
      }
      case 'md5':
        scope.postMessage({ id: msg.id, ok: true, md5: hasher.md5(msg.data) });
        return;
      case 'sha1-blob': {
        const bytes = new Uint8Array(await msg.blob.arrayBuffer());
        const sha1 = webCryptoAvailable() ? await webCryptoSha1(bytes) : hasher.sha1(bytes);
        scope.postMessage({ id: msg.id, ok: true, sha1 });
        return;
      }
    }
  };

  scope.addEventListener('message', (ev) => {
    const msg = ev.data as HashWorkerRequest;
    chain = chain
      .then(() => handle(msg))
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
