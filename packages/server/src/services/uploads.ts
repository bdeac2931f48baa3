import { createHash, randomInt } from 'node:crypto';
import type { Readable } from 'node:stream';
import type {
  CompleteUploadResponse,
  CreateUploadBody,
  CreateUploadResponse,
  FileEntry,
  UploadSession,
} from '@dfs/shared';
import type { FastifyBaseLogger } from 'fastify';
import { HttpError, notFound } from '../errors.ts';
import type { ContentRow } from '../repositories/contents.ts';
import type { Repositories } from '../repositories/index.ts';
import type { UploadRow } from '../repositories/uploads.ts';
import { StagedSizeError, type StagingArea } from '../storage/staging.ts';
import type { ContentStore } from './content-store.ts';
import type { FileService } from './files.ts';
import { newId, newToken } from './ids.ts';
import type { UserLimits } from './limits.ts';
import { assertValidName } from './names.ts';

export interface UploadLimits {
  chunkSize: number;
  maxFileSize: number;
  expiryMs: number;
  maxOpenPerUser: number;
  /** Free space the staging filesystem must keep after what an upload will stage. */
  minFreeBytes: number;
}

/** How much of the file a proof covers, and how long a challenge stays answerable. */
const CHALLENGE_BYTES = 64 * 1024;
const CHALLENGE_TTL_MS = 5 * 60_000;

export class UploadService {
  /** In-process completes, so a second concurrent `complete` waits for the first's answer. */
  private readonly completing = new Map<string, Promise<CompleteUploadResponse>>();

  constructor(
    private readonly repos: Repositories,
    private readonly staging: StagingArea,
    private readonly contents: ContentStore,
    private readonly files: FileService,
    private readonly limits: UploadLimits,
    private readonly log: FastifyBaseLogger,
    private readonly now: () => number,
    private readonly userLimits: UserLimits,
  ) {}

  chunkCountFor(size: number): number {
    return Math.ceil(size / this.limits.chunkSize);
  }

  async create(
    userId: string,
    body: CreateUploadBody,
  ): Promise<{ status: number; body: CreateUploadResponse }> {
    assertValidName(body.name);
    if (body.size > this.limits.maxFileSize) {
      throw new HttpError('file_too_large', `files may be at most ${this.limits.maxFileSize} bytes`);
    }
    const parentId = await this.files.resolveParent(userId, body.parentId);
    const content = await this.repos.contents.findBySha1(body.sha1);
    const known = content?.state === 'ready' && Number(content.size) === body.size ? content : undefined;

    if (body.proof) {
      if (!known) throw new HttpError('proof_failed', 'no such content to prove; upload the bytes instead');
      await this.checkProof(userId, known, body.proof.challengeId, body.proof.sha1);
      const file = await this.repos.transaction(async (tx) => {
        await this.userLimits.assertRoom(userId, { bytes: Number(known.size), entries: 1 }, tx);
        return this.files.addFile(
          {
            userId,
            parentId,
            name: body.name,
            contentId: known.id,
            sha1: known.sha1,
            size: Number(known.size),
          },
          tx,
        );
      });
      return { status: 201, body: { status: 'instant', file } };
    }
    if (known)
      return { status: 200, body: { status: 'challenge', challenge: await this.challenge(userId, known) } };

    const now = this.now();
    const resumable = await this.repos.uploads.findResumable(userId, body.sha1, body.size, now);
    if (resumable) {
      return { status: 200, body: { status: 'resumed', ...(await this.session(resumable)) } };
    }
    await this.assertStagingRoom(body.size);
    const row: UploadRow = {
      id: newId(),
      user_id: userId,
      name: body.name,
      parent_id: parentId,
      size: body.size,
      sha1: body.sha1,
      chunk_size: this.limits.chunkSize,
      chunk_count: this.chunkCountFor(body.size),
      status: 'open',
      file_id: null,
      created_at: now,
      expires_at: now + this.limits.expiryMs,
    };
    await this.repos.transaction(async (tx) => {
      // The declared size is reserved against the quota from now until the upload ends.
      await this.userLimits.assertRoom(userId, { bytes: body.size, entries: 1 }, tx);
      if ((await tx.uploads.countOpen(userId, now)) >= this.limits.maxOpenPerUser) {
        throw new HttpError(
          'too_many_uploads',
          `at most ${this.limits.maxOpenPerUser} unfinished uploads at a time`,
        );
      }
      await tx.uploads.insert(row);
    });
    return { status: 201, body: { status: 'created', ...(await this.session(row)) } };
  }

  /** A random range and a nonce: knowing the hash is not enough, holding the bytes is. */
  private async challenge(userId: string, content: ContentRow) {
    const size = Number(content.size);
    const length = Math.min(size, CHALLENGE_BYTES);
    const offset = size - length > 0 ? randomInt(0, size - length + 1) : 0;
    const row = {
      id: newId(),
      user_id: userId,
      content_id: content.id,
      nonce: newToken(24),
      offset,
      length,
      expires_at: this.now() + CHALLENGE_TTL_MS,
      used_at: null,
    };
    await this.repos.challenges.insert(row);
    return { id: row.id, nonce: row.nonce, offset, length };
  }

  private async checkProof(userId: string, content: ContentRow, challengeId: string, proof: string) {
    const challenge = await this.repos.challenges.find(userId, challengeId);
    const fail = (why: string) => new HttpError('proof_failed', why);
    if (!challenge || challenge.content_id !== content.id) throw fail('unknown challenge');
    // Consumed before checking, so a wrong answer burns the challenge too: no retries on one nonce.
    if (!(await this.repos.challenges.consume(challenge.id, this.now())))
      throw fail('challenge expired or used');
    const bytes = await this.contents.readRange(content, Number(challenge.offset), Number(challenge.length));
    const expected = createHash('sha1').update(challenge.nonce, 'utf8').update(bytes).digest('hex');
    if (expected !== proof) throw fail('proof does not match the content');
  }

  async get(userId: string, uploadId: string): Promise<UploadSession> {
    return this.session(await this.row(userId, uploadId));
  }

  private async row(userId: string, uploadId: string): Promise<UploadRow> {
    const row = await this.repos.uploads.find(userId, uploadId);
    if (!row) throw notFound('upload not found');
    return row;
  }

  private async session(row: UploadRow): Promise<UploadSession> {
    const chunks = await this.repos.uploads.chunks(row.id);
    return {
      uploadId: row.id,
      name: row.name,
      size: Number(row.size),
      sha1: row.sha1,
      chunkSize: row.chunk_size,
      chunkCount: row.chunk_count,
      receivedChunks: chunks.map((c) => c.idx),
      expiresAt: new Date(Number(row.expires_at)).toISOString(),
    };
  }

  expectedChunkSize(row: Pick<UploadRow, 'size' | 'chunk_size' | 'chunk_count'>, index: number): number {
    return index < row.chunk_count - 1
      ? row.chunk_size
      : Number(row.size) - row.chunk_size * (row.chunk_count - 1);
  }

  /** Checks a chunk request before any byte is read; returns the size the body must have. */
  async prepareChunk(
    userId: string,
    uploadId: string,
    index: number,
    contentLength: number | null,
  ): Promise<{ upload: UploadRow; expected: number }> {
    const upload = await this.row(userId, uploadId);
    this.assertOpen(upload);
    if (!Number.isInteger(index) || index < 0 || index >= upload.chunk_count) {
      throw new HttpError('bad_chunk_index', `chunk index must be 0..${upload.chunk_count - 1}`);
    }
    const expected = this.expectedChunkSize(upload, index);
    if (contentLength !== null && contentLength !== expected) {
      throw new HttpError(
        'bad_chunk_size',
        `chunk ${index} must be exactly ${expected} bytes, not ${contentLength}`,
      );
    }
    return { upload, expected };
  }

  private assertOpen(upload: UploadRow): void {
    if (upload.status === 'complete') throw new HttpError('bad_request', 'upload already completed');
    if (Number(upload.expires_at) <= this.now()) throw new HttpError('upload_expired', 'upload expired');
  }

  /** Stages one chunk durably, verifying its size and MD5; acknowledged only once on disk. */
  async putChunk(
    upload: UploadRow,
    index: number,
    expected: number,
    body: Readable,
    md5?: string,
  ): Promise<void> {
    try {
      const piece = await this.staging.writePiece(upload.id, index, body, expected, (p) => {
        if (p.size !== expected) {
          throw new HttpError(
            'bad_chunk_size',
            `chunk ${index} must be exactly ${expected} bytes, got ${p.size}`,
          );
        }
        if (md5 !== undefined && p.md5 !== md5) {
          throw new HttpError('checksum_mismatch', `chunk ${index} does not match its Content-MD5`);
        }
      });
      const now = this.now();
      await this.repos.uploads.recordChunk({
        upload_id: upload.id,
        idx: index,
        size: piece.size,
        md5: piece.md5,
        created_at: now,
      });
      // Activity keeps a long upload alive.
      await this.repos.uploads.touch(upload.id, now + this.limits.expiryMs);
    } catch (error) {
      if (error instanceof StagedSizeError) {
        throw new HttpError('bad_chunk_size', `chunk ${index} must be exactly ${expected} bytes`);
      }
      throw error;
    }
  }

  complete(userId: string, uploadId: string): Promise<CompleteUploadResponse> {
    const running = this.completing.get(uploadId);
    if (running) return running;
    const work = this.runComplete(userId, uploadId).finally(() => this.completing.delete(uploadId));
    this.completing.set(uploadId, work);
    return work;
  }

  private async runComplete(userId: string, uploadId: string): Promise<CompleteUploadResponse> {
    const upload = await this.row(userId, uploadId);
    if (upload.status === 'complete' && upload.file_id) {
      return { status: 'complete', file: await this.files.get(userId, upload.file_id) };
    }
    this.assertOpen(upload);
    const chunks = await this.repos.uploads.chunks(upload.id);
    const have = new Set(chunks.map((c) => c.idx));
    const missing = Array.from({ length: upload.chunk_count }, (_, i) => i).filter((i) => !have.has(i));
    if (missing.length > 0) {
      throw new HttpError('incomplete', `${missing.length} chunk(s) missing`, { missing });
    }
    if (!(await this.repos.uploads.transition(upload.id, 'open', 'completing'))) {
      throw new HttpError('upload_busy', 'upload is being completed by another request', { retryAfter: 2 });
    }
    let file: FileEntry;
    try {
      const content = await this.contents.ingest({
        declaredSha1: upload.sha1,
        size: Number(upload.size),
        open: () => this.staging.readAll(upload.id, upload.chunk_count),
      });
      file = await this.repos.transaction(async (tx) => {
        // The user's row before the content's, in the order every quota check takes them.
        await tx.users.findForUpdate(userId);
        const parentId = await this.files.resolveParent(userId, upload.parent_id, tx).catch(() => '');
        const entry = await this.files.addFile(
          {
            userId,
            parentId,
            name: upload.name,
            contentId: content.id,
            sha1: content.sha1,
            size: Number(content.size),
          },
          tx,
        );
        await tx.uploads.transition(upload.id, 'completing', 'complete', { file_id: entry.id });
        return entry;
      });
    } catch (error) {
      if (
        error instanceof HttpError &&
        (error.code === 'hash_mismatch' || error.code === 'content_collision')
      ) {
        // The bytes are not what was declared: discard them, register nothing.
        await this.repos.uploads.delete(upload.id);
        await this.staging.remove(upload.id);
      } else {
        await this.repos.uploads.transition(upload.id, 'completing', 'open');
      }
      throw error;
    }
    await this.staging.remove(upload.id).catch((err) => this.log.warn({ err }, 'staging cleanup failed'));
    return { status: 'complete', file };
  }

  /** The one-request path (`POST /api/files`): same verification and dedupe, streamed to staging. */
  async uploadSingle(
    userId: string,
    parentIdInput: string | undefined,
    name: string,
    body: Readable,
    /** The request's Content-Length (an upper bound of the file's size), when it has one. */
    declaredBytes: number | null = null,
  ): Promise<FileEntry> {
    assertValidName(name);
    const parentId = await this.files.resolveParent(userId, parentIdInput);
    // Refuse before a byte is read when the user is already at a bound or staging has no room.
    await this.userLimits.assertRoom(userId, { bytes: 0, entries: 1 }, this.repos);
    await this.assertStagingRoom(Math.min(declaredBytes ?? 0, this.limits.maxFileSize));
    const scratch = this.staging.scratchId();
    try {
      let piece: { size: number; sha1: string | null };
      try {
        piece = await this.staging.writePiece(scratch, 0, body, this.limits.maxFileSize, () => undefined, {
          sha1: true,
        });
      } catch (error) {
        if (error instanceof StagedSizeError) {
          throw new HttpError('file_too_large', `files may be at most ${this.limits.maxFileSize} bytes`);
        }
        throw error;
      }
      // The size is known now: refuse before the bytes go to the nodes, and again, locked, below.
      await this.userLimits.assertRoom(userId, { bytes: piece.size, entries: 1 }, this.repos);
      const content = await this.contents.ingest({
        declaredSha1: piece.sha1 as string,
        size: piece.size,
        open: () => this.staging.readAll(scratch, 1),
      });
      return await this.repos.transaction(async (tx) => {
        await this.userLimits.assertRoom(userId, { bytes: piece.size, entries: 1 }, tx);
        return this.files.addFile(
          {
            userId,
            parentId,
            name,
            contentId: content.id,
            sha1: content.sha1,
            size: Number(content.size),
          },
          tx,
        );
      });
    } finally {
      await this.staging.remove(scratch);
    }
  }

  /**
   * The one free-space check: staging `bytes` more must leave DFS_MIN_FREE_BYTES free on the
   * filesystem that holds staging, or the upload is refused before anything is created.
   */
  private async assertStagingRoom(bytes: number): Promise<void> {
    const free = await this.staging.freeBytes();
    if (free - bytes < this.limits.minFreeBytes) {
      this.log.warn(
        { freeBytes: free, stagingBytes: bytes, minFreeBytes: this.limits.minFreeBytes },
        'upload refused: staging is low on space',
      );
      throw new HttpError(
        'insufficient_storage',
        'the server has no room to accept this upload right now; try again later or tell its administrator',
      );
    }
  }

  /**
   * Frees an upload and its staged bytes — but not under a running `complete`, which is reading
   * them: that answers 409 (the complete's outcome stands) rather than failing its node writes.
   */
  async abort(userId: string, uploadId: string): Promise<void> {
    const upload = await this.row(userId, uploadId);
    if (!(await this.repos.uploads.deleteUnlessCompleting(upload.id))) {
      throw new HttpError('upload_busy', 'this upload is being completed; it cannot be aborted now', {
        retryAfter: 2,
      });
    }
    await this.staging.remove(upload.id);
  }

  /** A crashed `complete` leaves `completing` behind; staging still has every chunk, so reopen. */
  async recoverInterrupted(): Promise<void> {
    await this.repos.uploads.reopenCompleting();
  }
}
