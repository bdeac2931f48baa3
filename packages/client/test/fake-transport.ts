/**
 * An in-memory stand-in for the five upload routes, following API.md's rules (exact chunk sizes,
 * a required chunk checksum, challenge/proof, idempotent complete). It exists to test the
 * engine's logic (planning, retries, state changes); the real server's integration tests cover
 * the wire. Its own digests go through node:crypto's one-shot `hash` and SheetJS's CRC-32C, so a
 * test that counts the client's hashing at `createHash` and @node-rs/crc32 does not count the server's.
 */
import { hash, randomUUID } from 'node:crypto';
import type {
  Challenge,
  CompleteUploadResponse,
  CreateUploadBody,
  CreateUploadResponse,
  FileEntry,
} from '@dfs/shared';
import CRC32C from 'crc-32/crc32c.js';
import type {
  BatchFile,
  ChunkBody,
  ChunkChecksum,
  CompleteUploadOptions,
  PutChunkOptions,
  RequestOptions,
  UploadSimpleOptions,
  UploadTransport,
} from '../src/api.ts';
import { ApiError } from '../src/errors.ts';

interface Session {
  uploadId: string;
  name: string;
  size: number;
  /** null: speculative (created without a sha1; complete names it). */
  sha1: string | null;
  parentId: string | null;
  chunkSize: number;
  chunkCount: number;
  chunks: Map<number, Uint8Array>;
  file?: FileEntry;
}

type Op =
  | 'createUpload'
  | 'getUpload'
  | 'putChunk'
  | 'completeUpload'
  | 'abortUpload'
  | 'uploadSimple'
  | 'uploadBatch';

const sha1Of = (...parts: Uint8Array[]) => hash('sha1', Buffer.concat(parts), 'hex');
const md5Base64Of = (bytes: Uint8Array) => hash('md5', bytes, 'base64');

export function apiError(status: number, code: string, extra: Record<string, unknown> = {}) {
  return new ApiError(status, code as never, code, extra);
}

export class FakeTransport implements UploadTransport {
  chunkSize: number;
  readonly stored = new Map<string, Uint8Array>(); // sha1 → content
  readonly sessions = new Map<string, Session>();
  readonly challenges = new Map<string, Challenge & { sha1: string }>();
  readonly calls: string[] = [];
  /** Errors to throw, in order, before doing the real work of an operation. */
  readonly failures: Partial<Record<Op, unknown[]>> = {};
  /** The checksum each chunk PUT carried, by chunk index (the last PUT of that index). */
  readonly checksums = new Map<number, ChunkChecksum | string | null | undefined>();
  /** Chunk PUTs whose body was a Blob (sent as it is) rather than bytes read by the client. */
  blobPuts = 0;
  /** The Blobs one-request and batch uploads sent, in order. */
  readonly sentBlobs: Blob[] = [];
  /** The memory the byte bodies of chunk PUTs were in (one entry per buffer the client used). */
  readonly bodyBuffers = new Set<ArrayBufferLike>();
  /** Hook that runs at the start of each putChunk (may await, may throw). */
  beforePut: ((index: number, signal?: AbortSignal) => Promise<void>) | null = null;

  /** Present only when constructed with `{ simple: true }`: without it every file is chunked. */
  readonly uploadSimple?: (file: Blob, o?: UploadSimpleOptions) => Promise<{ file: FileEntry }>;
  /** Likewise `POST /api/files/batch`; the sizes of the batches it was sent, in order. */
  readonly uploadBatch?: (files: BatchFile[]) => Promise<{ files: FileEntry[] }>;
  readonly batchSizes: number[] = [];

  constructor(chunkSize = 1024, opts: { simple?: boolean } = {}) {
    this.chunkSize = chunkSize;
    if (opts.simple) {
      this.uploadSimple = (file, o) => this.#uploadSimple(file, o);
      this.uploadBatch = (files) => this.#uploadBatch(files);
    }
  }

  #maybeFail(op: Op): void {
    const err = this.failures[op]?.shift();
    if (err !== undefined) throw err;
  }

  #file(s: { name: string; size: number; sha1: string; parentId: string | null }): FileEntry {
    const now = new Date().toISOString();
    return {
      id: randomUUID(),
      kind: 'file',
      name: s.name,
      parentId: s.parentId,
      size: s.size,
      sha1: s.sha1,
      mime: null,
      createdAt: now,
      updatedAt: now,
      mtime: now,
    };
  }

  async createUpload(body: CreateUploadBody, _o?: RequestOptions): Promise<CreateUploadResponse> {
    this.calls.push(body.proof ? 'createUpload+proof' : 'createUpload');
    this.#maybeFail('createUpload');
    const known = body.sha1 ? this.stored.get(body.sha1) : undefined;
    if (body.sha1 && known && known.length === body.size) {
      if (!body.proof) {
        const offset = Math.floor(known.length / 3);
        const c = {
          id: randomUUID(),
          nonce: randomUUID(),
          offset,
          length: Math.min(100, known.length - offset),
        };
        this.challenges.set(c.id, { ...c, sha1: body.sha1 });
        return { status: 'challenge', challenge: c };
      }
      const c = this.challenges.get(body.proof.challengeId);
      this.challenges.delete(body.proof.challengeId);
      const want = c && sha1Of(Buffer.from(c.nonce, 'utf8'), known.subarray(c.offset, c.offset + c.length));
      if (!c || c.sha1 !== body.sha1 || want !== body.proof.sha1) throw apiError(403, 'proof_failed');
      return {
        status: 'instant',
        file: this.#file({ ...body, sha1: body.sha1, parentId: body.parentId ?? null }),
      };
    }
    for (const s of this.sessions.values()) {
      if (body.sha1 && s.sha1 === body.sha1 && s.size === body.size && !s.file) {
        return { status: 'resumed', ...this.#view(s) };
      }
    }
    const s: Session = {
      uploadId: randomUUID(),
      name: body.name,
      size: body.size,
      sha1: body.sha1 ?? null,
      parentId: body.parentId ?? null,
      chunkSize: this.chunkSize,
      chunkCount: Math.ceil(body.size / this.chunkSize),
      chunks: new Map(),
    };
    this.sessions.set(s.uploadId, s);
    return { status: 'created', ...this.#view(s) };
  }

  #view(s: Session) {
    return {
      uploadId: s.uploadId,
      name: s.name,
      size: s.size,
      sha1: s.sha1,
      chunkSize: s.chunkSize,
      chunkCount: s.chunkCount,
      receivedChunks: [...s.chunks.keys()].sort((a, b) => a - b),
      expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
    };
  }

  #session(id: string): Session {
    const s = this.sessions.get(id);
    if (!s) throw apiError(404, 'not_found');
    return s;
  }

  async getUpload(uploadId: string) {
    this.calls.push('getUpload');
    this.#maybeFail('getUpload');
    return this.#view(this.#session(uploadId));
  }

  async putChunk(
    uploadId: string,
    index: number,
    body: ChunkBody,
    checksum?: ChunkChecksum | string | null,
    o?: PutChunkOptions,
  ) {
    this.calls.push(`putChunk ${index}`);
    this.checksums.set(index, checksum);
    if (body instanceof Blob) this.blobPuts++;
    else this.bodyBuffers.add(body.buffer);
    const bytes = body instanceof Blob ? new Uint8Array(await body.arrayBuffer()) : body;
    await this.beforePut?.(index, o?.signal);
    o?.signal?.throwIfAborted();
    this.#maybeFail('putChunk');
    const s = this.#session(uploadId);
    if (index < 0 || index >= s.chunkCount) throw apiError(400, 'bad_chunk_index');
    const want = Math.min(s.chunkSize, s.size - index * s.chunkSize);
    if (bytes.length !== want) throw apiError(400, 'bad_chunk_size');
    if (!checksum) throw apiError(400, 'checksum_required');
    const sent: ChunkChecksum = typeof checksum === 'string' ? { md5Base64: checksum } : checksum;
    const ok =
      'crc32c' in sent ? CRC32C.buf(bytes) >>> 0 === sent.crc32c : md5Base64Of(bytes) === sent.md5Base64;
    if (!ok) throw apiError(400, 'checksum_mismatch');
    o?.onProgress?.(Math.floor(bytes.length / 2));
    s.chunks.set(index, bytes.slice());
  }

  async completeUpload(uploadId: string, o: CompleteUploadOptions = {}): Promise<CompleteUploadResponse> {
    this.calls.push('completeUpload');
    this.#maybeFail('completeUpload');
    const s = this.#session(uploadId);
    if (s.file) return { status: 'complete', file: s.file };
    const declared = s.sha1 ?? o.sha1;
    if (!declared) throw apiError(422, 'sha1_required');
    if (s.sha1 && o.sha1 && o.sha1 !== s.sha1) {
      this.sessions.delete(uploadId);
      throw apiError(422, 'hash_mismatch');
    }
    const missing = [];
    for (let i = 0; i < s.chunkCount; i++) if (!s.chunks.has(i)) missing.push(i);
    if (missing.length) throw apiError(409, 'incomplete', { missing });
    const all = Buffer.concat([...Array(s.chunkCount).keys()].map((i) => s.chunks.get(i)!));
    if (sha1Of(all) !== declared) {
      this.sessions.delete(uploadId);
      throw apiError(422, 'hash_mismatch');
    }
    this.stored.set(declared, new Uint8Array(all));
    s.file = this.#file({ ...s, sha1: declared });
    return { status: 'complete', file: s.file };
  }

  /** `POST /api/files`: the whole file in one request, its sha1 checked like the server does. */
  async #uploadSimple(file: Blob, o: UploadSimpleOptions = {}): Promise<{ file: FileEntry }> {
    this.calls.push('uploadSimple');
    this.sentBlobs.push(file);
    this.#maybeFail('uploadSimple');
    const bytes = new Uint8Array(await file.arrayBuffer());
    const actual = sha1Of(bytes);
    if (o.sha1 && o.sha1 !== actual) throw apiError(422, 'hash_mismatch');
    this.stored.set(actual, bytes);
    return {
      file: this.#file({
        name: o.name ?? 'file',
        size: bytes.length,
        sha1: actual,
        parentId: o.parentId ?? null,
      }),
    };
  }

  async #uploadBatch(files: BatchFile[]): Promise<{ files: FileEntry[] }> {
    this.calls.push('uploadBatch');
    this.sentBlobs.push(...files.map((f) => f.blob));
    this.batchSizes.push(files.length);
    this.#maybeFail('uploadBatch');
    // All or nothing, like the server: every file is checked before any is stored.
    const all = await Promise.all(files.map(async (f) => new Uint8Array(await f.blob.arrayBuffer())));
    all.forEach((bytes, index) => {
      const actual = sha1Of(bytes);
      if (files[index]?.sha1 && files[index]?.sha1 !== actual)
        throw apiError(422, 'hash_mismatch', { index });
    });
    return {
      files: all.map((bytes, i) => {
        const f = files[i] as BatchFile;
        const sha1 = sha1Of(bytes);
        this.stored.set(sha1, bytes);
        return this.#file({ name: f.name, size: bytes.length, sha1, parentId: f.parentId ?? null });
      }),
    };
  }

  async abortUpload(uploadId: string) {
    this.calls.push('abortUpload');
    this.#maybeFail('abortUpload');
    this.#session(uploadId);
    this.sessions.delete(uploadId);
  }
}
