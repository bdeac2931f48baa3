import { BATCH_MAX_BYTES, BATCH_MAX_FILES, type FileEntry } from '@dfs/shared';
import type { BatchFile, UploadTransport } from '../api.ts';
import { ApiError } from '../errors.ts';

export interface SmallFileBatcherOptions {
  /** Files per request; default 64 (the server takes up to BATCH_MAX_FILES). */
  maxFiles?: number;
  /** Bytes per request; default 8 MiB (the server takes up to BATCH_MAX_BYTES). */
  maxBytes?: number;
  /** Files above this go alone (`POST /api/files`); default 1 MiB. */
  maxFileBytes?: number;
  /** How long the first file of a batch waits for company; default 20 ms. */
  waitMs?: number;
}

interface Pending {
  file: BatchFile;
  resolve(file: FileEntry): void;
  reject(err: unknown): void;
  signal: AbortSignal;
}

/**
 * Gathers the one-request uploads of many small files into `POST /api/files/batch` requests: a
 * folder of small files is bound by requests, not bytes (one fetch, one authentication and one
 * transaction per batch instead of per file). Each file still gets its own promise; a batch the
 * server refuses for one of its files (a 4xx) is sent again one file per request, so only that
 * file fails, and a transient failure (network, 5xx, 429) rejects every file of it for its
 * upload's own retry.
 */
export class SmallFileBatcher {
  readonly maxFileBytes: number;
  readonly #maxFiles: number;
  readonly #maxBytes: number;
  readonly #waitMs: number;
  #pending: Pending[] = [];
  #bytes = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly transport: UploadTransport,
    options: SmallFileBatcherOptions = {},
  ) {
    this.#maxFiles = Math.min(BATCH_MAX_FILES, Math.max(1, options.maxFiles ?? 64));
    this.#maxBytes = Math.min(BATCH_MAX_BYTES, options.maxBytes ?? 8 * 1024 * 1024);
    this.maxFileBytes = Math.min(this.#maxBytes, options.maxFileBytes ?? 1024 * 1024);
    this.#waitMs = options.waitMs ?? 20;
  }

  /** Uploads one small file as part of the next batch. */
  submit(file: BatchFile, signal: AbortSignal): Promise<FileEntry> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (file.blob.size > this.maxFileBytes) {
      return Promise.reject(new RangeError(`${file.name} is too big for a batch`));
    }
    return new Promise<FileEntry>((resolve, reject) => {
      if (this.#bytes + file.blob.size > this.#maxBytes) this.#flush();
      const entry: Pending = { file, resolve, reject, signal };
      // A paused or canceled upload stops waiting; if its batch is already on the wire, the file
      // may still be created, like a one-file request cut off after the server read it.
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      this.#pending.push(entry);
      this.#bytes += file.blob.size;
      if (this.#pending.length >= this.#maxFiles) this.#flush();
      else this.#timer ??= setTimeout(() => this.#flush(), this.#waitMs);
    });
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#pending.filter((p) => !p.signal.aborted);
    this.#pending = [];
    this.#bytes = 0;
    if (batch.length > 0) void this.#send(batch);
  }

  async #send(batch: Pending[]): Promise<void> {
    try {
      if (!this.transport.uploadBatch) throw new Error('this transport cannot upload batches');
      const { files } = await this.transport.uploadBatch(batch.map((p) => p.file));
      batch.forEach((p, i) => {
        const file = files[i];
        if (file) p.resolve(file);
        else p.reject(new Error('the server answered a batch with fewer files than were sent'));
      });
    } catch (err) {
      if (isRefusal(err)) {
        // One file spoiled the batch (a name, a hash, a folder gone), or the server takes smaller
        // batches: each goes alone, so the others get through and that one gets its own error.
        await Promise.all(batch.map((p) => this.#sendAlone(p)));
        return;
      }
      for (const p of batch) p.reject(err);
    }
  }

  async #sendAlone(p: Pending): Promise<void> {
    const { transport } = this;
    try {
      if (transport.uploadSimple) {
        const { blob, name, parentId, sha1, mtime } = p.file;
        p.resolve(
          (
            await transport.uploadSimple(blob, {
              name,
              parentId: parentId ?? null,
              ...(sha1 ? { sha1 } : {}),
              ...(mtime !== undefined ? { mtime } : {}),
            })
          ).file,
        );
      } else {
        const { files } = await (transport.uploadBatch as NonNullable<UploadTransport['uploadBatch']>)([
          p.file,
        ]);
        if (!files[0]) throw new Error('the server answered a batch with no file');
        p.resolve(files[0]);
      }
    } catch (err) {
      p.reject(err);
    }
  }
}

/** A 4xx about the request's content, not about the session or the server's load. */
function isRefusal(err: unknown): boolean {
  return (
    err instanceof ApiError &&
    err.status >= 400 &&
    err.status < 500 &&
    err.status !== 401 &&
    err.status !== 429
  );
}
