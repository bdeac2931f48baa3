import { createHash, randomInt } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  type CompleteUploadResponse,
  type CreateUploadBody,
  type CreateUploadResponse,
  chunkCountFor,
  chunkRange,
  type FileEntry,
  type OnConflict,
  type UploadSession,
} from '@dfs/shared';
import type { FastifyBaseLogger } from 'fastify';
import { isForeignKeyViolation } from '../db/knex.ts';
import { HttpError, notFound } from '../errors.ts';
import type { ContentRow } from '../repositories/contents.ts';
import type { Repositories } from '../repositories/index.ts';
import type { UploadRow } from '../repositories/uploads.ts';
import { ChecksumMismatchError, objectKey } from '../storage/types.ts';
import { BodyMemory } from './body-memory.ts';
import { ChunkBuffers } from './chunk-buffers.ts';
import type { ContentStore } from './content-store.ts';
import type { FileService } from './files.ts';
import { type ChunkChecksum, legacyChunkIdentity } from './hashing/chunk.ts';
import type { ChunkDigests } from './hashing/pool.ts';
import type { UploadDigests, UploadHashes } from './hashing/upload-hashes.ts';
import { newId, newToken } from './ids.ts';
import type { UserLimits } from './limits.ts';
import { mtimeFromIso } from './mtime.ts';
import { assertValidName } from './names.ts';
import type { Metrics } from './operations/metrics.ts';
import { AccessService } from './sharing/access.ts';
import { readBody, SingleUpload } from './single-upload.ts';
import type { UploadParts } from './upload-parts.ts';

export interface UploadLimits {
  chunkSize: number;
  maxFileSize: number;
  expiryMs: number;
  maxOpenPerUser: number;
  /** Free space a node must keep after the bytes of an upload placed on it. */
  minFreeBytes: number;
  /** How long a `complete` holds the upload without renewing (a crashed holder's work is retaken). */
  completeLeaseMs: number;
  /** How long a `complete` request waits for the work before answering `upload_busy`. */
  completeWaitMs: number;
  /** A body that sends nothing this long while the server waits for it fails (0: never). */
  bodyIdleMs?: number;
}

/** How much of the file a proof covers, and how long a challenge stays answerable. */
const CHALLENGE_BYTES = 64 * 1024;
const CHALLENGE_TTL_MS = 5 * 60_000;

/**
 * Where a completed upload's content goes, inside the transaction that publishes it: by default a
 * new file named as the upload; a protocol that names the target only at the end (Nextcloud's
 * chunked upload) gives its own, which may give an existing file the new content.
 */
export type PlaceFile = (tx: Repositories, content: ContentRow) => Promise<FileEntry>;

/** A session opened through an upload request's link, for its folder's owner. */
export interface LinkSession {
  shareToken: string;
  uploader: string;
  /** Runs in the transaction that records the session, before it does: holds the link's bytes. */
  reserve: (tx: Repositories) => Promise<void>;
}

export class UploadService {
  /** Completes running in this process; across processes the lease in the row decides. */
  private readonly completing = new Map<string, Promise<CompleteUploadResponse>>();
  /** Digests of uploads whose `complete` failed after hashing (a node hiccup): no second pass. */
  private readonly verdicts = new Map<string, { epoch: number; digests: UploadDigests }>();
  private readonly single: SingleUpload;
  private readonly buffers: ChunkBuffers;

  /**
   * Into a folder shared with the uploader as editor, the file joins the owner's tree and quota;
   * the upload session stays the uploader's (only they can resume, complete or abort it).
   */
  private get access(): AccessService {
    return new AccessService(this.repos);
  }

  constructor(
    private readonly repos: Repositories,
    private readonly parts: UploadParts,
    private readonly hashes: UploadHashes,
    private readonly contents: ContentStore,
    private readonly files: FileService,
    private readonly limits: UploadLimits,
    private readonly log: FastifyBaseLogger,
    private readonly now: () => number,
    private readonly userLimits: UserLimits,
    private readonly digests: ChunkDigests,
    /** Bounds what bodies still arriving hold in memory (none: unbounded). */
    readonly memory: BodyMemory = new BodyMemory({ totalBytes: 0, perUserBytes: 0 }),
    private readonly metrics?: Metrics,
  ) {
    this.buffers = new ChunkBuffers(limits.chunkSize);
    this.single = new SingleUpload(parts, contents, digests, {
      chunkSize: limits.chunkSize,
      maxFileSize: limits.maxFileSize,
      minFreeBytes: limits.minFreeBytes,
      idleMs: limits.bodyIdleMs ?? 0,
    });
  }

  async create(userId: string, body: CreateUploadBody, link?: LinkSession): Promise<CreateUploadResponse> {
    assertValidName(body.name);
    const mtime = body.mtime === undefined ? undefined : mtimeFromIso(body.mtime, this.now());
    if (body.size > this.limits.maxFileSize) {
      throw new HttpError('file_too_large', `files may be at most ${this.limits.maxFileSize} bytes`);
    }
    const { ownerId } = await this.access.parent(userId, body.parentId);
    const parentId = await this.files.resolveParent(ownerId, body.parentId);
    const onConflict = body.onConflict ?? 'rename';
    await this.files.assertPlaceable(ownerId, parentId, body.name, onConflict);
    // Through a link the bytes are always sent: an instant upload (or a resumed session) would
    // tell an anonymous uploader what the server holds.
    const content = body.sha1 && !link ? await this.repos.contents.findBySha1(body.sha1) : undefined;
    const known = content?.state === 'ready' && Number(content.size) === body.size ? content : undefined;

    if (body.proof) {
      if (!known) throw new HttpError('proof_failed', 'no such content to prove; upload the bytes instead');
      await this.checkProof(userId, known, body.proof.challengeId, body.proof.sha1);
      const file = await this.repos.transaction(async (tx) => {
        await this.userLimits.assertRoom(ownerId, { bytes: Number(known.size), entries: 1 }, tx);
        return this.files.placeFile(
          {
            userId: ownerId,
            parentId,
            name: body.name,
            contentId: known.id,
            sha1: known.sha1,
            size: Number(known.size),
            ...(mtime === undefined ? {} : { mtime }),
          },
          onConflict,
          tx,
        );
      });
      this.metrics?.uploadsStarted.inc();
      this.metrics?.uploadsCompleted.inc({ kind: 'instant' });
      return { status: 'instant', file };
    }
    if (known) return { status: 'challenge', challenge: await this.challenge(userId, known) };

    const now = this.now();
    if (body.sha1 && !link) {
      const resumable = await this.repos.uploads.findResumable(userId, body.sha1, body.size, now, parentId);
      if (resumable) {
        if (mtime !== undefined && Number(resumable.mtime ?? Number.NaN) !== mtime) {
          await this.repos.uploads.setMtime(resumable.id, mtime);
        }
        if ((resumable.on_conflict ?? 'rename') !== onConflict) {
          await this.repos.uploads.setOnConflict(resumable.id, onConflict);
        }
        return { status: 'resumed', ...(await this.session(resumable)) };
      }
    }
    const row: UploadRow = {
      id: newId(),
      user_id: userId,
      name: body.name,
      parent_id: parentId,
      size: body.size,
      sha1: body.sha1 ?? null,
      chunk_size: this.limits.chunkSize,
      chunk_count: chunkCountFor(body.size, this.limits.chunkSize),
      status: 'open',
      file_id: null,
      created_at: now,
      expires_at: now + this.limits.expiryMs,
      node_epoch: 0,
      lease_until: null,
      mtime: mtime ?? null,
      on_conflict: onConflict === 'rename' ? null : onConflict,
      ...(link ? { share_token: link.shareToken, uploader: link.uploader } : {}),
    };
    // The nodes that will hold the bytes are chosen now, with room for the declared size beside
    // every other unfinished upload's; each chunk goes straight to them.
    const hold = await this.parts.reserve(row.sha1 ?? row.id, body.size, this.limits.minFreeBytes);
    const nodeIds = hold.nodeIds;
    await this.repos
      .transaction(async (tx) => {
        // The declared size is reserved against the quota from now until the upload ends. Into
        // someone else's folder, the owner's room is what counts (checked again at complete, as
        // the open session is the uploader's).
        await this.userLimits.assertRoom(ownerId, { bytes: body.size, entries: 1 }, tx);
        // A link's sessions count per link: its visitors cannot use up the owner's allowance.
        const open = link
          ? (await tx.uploads.openForShare(link.shareToken, now)).length
          : await tx.uploads.countOpen(userId, now);
        if (open >= this.limits.maxOpenPerUser) {
          throw new HttpError(
            'too_many_uploads',
            `at most ${this.limits.maxOpenPerUser} unfinished uploads at a time${link ? ' through this link' : ''}`,
          );
        }
        await link?.reserve(tx);
        await tx.uploads.insert(row);
        await tx.uploads.addNodes(row.id, 0, nodeIds);
      })
      .then(hold.recorded, (error: unknown) => {
        hold.cancel();
        throw error;
      });
    this.metrics?.uploadsStarted.inc();
    return { status: 'created', ...(await this.session(row)) };
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

  /** `link`: the token of the upload request the session was opened through, if any. */
  async get(userId: string, uploadId: string, link?: string): Promise<UploadSession> {
    return this.session(await this.row(userId, uploadId, link));
  }

  /**
   * A session of the user's. One opened through an upload request is reached through that link
   * only (`link`), never through the owner's own routes: completing it there would skip the
   * link's byte count, and it is the visitor's to resume.
   */
  private async row(userId: string, uploadId: string, link?: string): Promise<UploadRow> {
    const row = await this.repos.uploads.find(userId, uploadId);
    if (!row || (row.share_token ?? undefined) !== link) throw notFound('upload not found');
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

  expectedChunkSize(row: Pick<UploadRow, 'size' | 'chunk_size'>, index: number): number {
    const { start, end } = chunkRange(Number(row.size), row.chunk_size, index);
    return end - start;
  }

  /** Checks a chunk request before any byte is read; returns the size the body must have. */
  async prepareChunk(
    userId: string,
    uploadId: string,
    index: number,
    contentLength: number | null,
    link?: string,
  ): Promise<{ upload: UploadRow; expected: number }> {
    const upload = await this.row(userId, uploadId, link);
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

  /**
   * Stores one chunk on the upload's nodes: the body is read into memory (one chunk, ≤ chunkSize),
   * its size and checksum checked, then written at its offset on every node of the upload and fsynced
   * there before the 204. The whole-file hashes advance as the chunk passes (UploadHashes).
   */
  async putChunk(
    upload: UploadRow,
    index: number,
    expected: number,
    body: Readable,
    checksum?: ChunkChecksum,
  ): Promise<void> {
    // The whole chunk is held before it is checked: counted against the memory bounds first.
    const lease = this.memory.take(upload.user_id, expected);
    // The buffer is ours alone: it may travel to a digest thread and come back as another object.
    const chunk = { bytes: this.buffers.take(expected), owned: true };
    let held = false;
    try {
      chunk.bytes = await readBody(
        body,
        expected,
        () => {
          throw new HttpError('bad_chunk_size', `chunk ${index} must be exactly ${expected} bytes`);
        },
        chunk.bytes,
        this.limits.bodyIdleMs ?? 0,
      );
      this.metrics?.bytesReceived.inc(chunk.bytes.length);
      held = await this.storeChunk(upload, index, expected, chunk, checksum);
    } finally {
      // A chunk the running hash keeps is counted by its own budget (DFS_UPLOAD_HASH_BUFFER_BYTES).
      lease.release();
      if (!held) this.buffers.give(chunk.bytes);
    }
    await this.touch(upload);
  }

  /** `putChunk` for a chunk already in memory (tus assembles whole chunks from its PATCHes). */
  async putChunkBytes(upload: UploadRow, index: number, data: Buffer): Promise<void> {
    this.metrics?.bytesReceived.inc(data.length);
    const chunk = { bytes: data, owned: false };
    await this.storeChunk(upload, index, this.expectedChunkSize(upload, index), chunk, undefined);
    await this.touch(upload);
  }

  /**
   * Activity keeps a long upload alive. The expiry moves at most once a minute: a fast upload's
   * chunks would otherwise each cost a write of the same row for a few seconds' difference.
   */
  private async touch(upload: UploadRow): Promise<void> {
    const expires = this.now() + this.limits.expiryMs;
    if (expires - Number(upload.expires_at) < TOUCH_EVERY_MS) return;
    await this.repos.uploads.touch(upload.id, expires);
  }

  /**
   * Checks and stores one chunk's bytes; true when the running hash keeps them. An `owned` chunk's
   * bytes are moved to the digest thread and back: `chunk.bytes` is then the buffer they came back in.
   */
  private async storeChunk(
    upload: UploadRow,
    index: number,
    expected: number,
    chunk: { bytes: Buffer; owned: boolean },
    checksum: ChunkChecksum | undefined,
  ): Promise<boolean> {
    if (chunk.bytes.length !== expected) {
      throw new HttpError(
        'bad_chunk_size',
        `chunk ${index} must be exactly ${expected} bytes, got ${chunk.bytes.length}`,
      );
    }
    // The CRC is checked on the digest thread with the block hashes. An MD5 is left to nodes that
    // check it themselves (S3's Content-MD5), sparing the app that pass; the write checks it here
    // after all if the upload's nodes turn out otherwise.
    const md5 = checksum?.algorithm === 'md5' ? checksum.hex : undefined;
    const appChecksMd5 = md5 !== undefined && !this.parts.nodesCheckMd5();
    const checkHere = checksum?.algorithm === 'crc32c' || appChecksMd5 ? (checksum ?? null) : null;
    const {
      bytes: data,
      identity,
      blocks,
      checksumOk,
    } = chunk.owned
      ? await this.digests.ofOwned(chunk.bytes, checkHere)
      : { ...(await this.digests.of(chunk.bytes, checkHere)), bytes: chunk.bytes };
    chunk.bytes = data;
    if (checksumOk === false) throw mismatch(index, checksum);
    const now = this.now();
    const claimAs = (sha256: string) =>
      this.repos.uploads
        .claimChunk(
          { upload_id: upload.id, idx: index, size: data.length, md5: md5 ?? '', sha256, created_at: now },
          now,
          now - CLAIM_STALE_MS,
        )
        .catch((error: unknown) => {
          // Aborted (or completed and swept) while this chunk was on its way.
          if (isForeignKeyViolation(error)) throw notFound('upload not found');
          throw error;
        });
    let sha256 = identity;
    let claim = await claimAs(sha256);
    const legacy = claim === 'conflict' ? legacyChunkIdentity(data) : null;
    // Perhaps the same bytes, acknowledged under the identity chunks had before block digests.
    if (legacy && (await claimAs(legacy)) === 'same') [sha256, claim] = [legacy, 'same'];
    if (claim === 'conflict') {
      throw new HttpError(
        'chunk_conflict',
        `chunk ${index} is already stored with other bytes; the file changed since the upload began`,
      );
    }
    if (claim === 'busy') {
      throw new HttpError('upload_busy', `other bytes for chunk ${index} are being written right now`, {
        retryAfter: 5,
      });
    }
    if (claim === 'write') {
      let written: { epoch: number; nodeIds: string[] };
      try {
        const { start } = chunkRange(Number(upload.size), upload.chunk_size, index);
        written = await this.parts.write(
          upload,
          start,
          data,
          md5 === undefined ? undefined : { hex: md5, checked: appChecksMd5 },
        );
      } catch (error) {
        await this.repos.uploads.releaseClaim(upload.id, index, sha256).catch(() => undefined);
        throw error instanceof ChecksumMismatchError ? mismatch(index, checksum) : error;
      }
      const { epoch } = written;
      if (!(await this.repos.uploads.markStored(upload.id, index, sha256, epoch))) {
        await this.repos.uploads.releaseClaim(upload.id, index, sha256).catch(() => undefined);
        // Deleted meanwhile (aborted, or discarded by a failed complete): nothing to send again.
        // The abort deleted the part files before this write made them again; delete them now
        // rather than leave them for the stray sweep.
        if ((await this.repos.uploads.nodeEpoch(upload.id)) === undefined) {
          await this.parts.discard(upload.id, written.nodeIds);
          throw notFound('upload not found');
        }
        throw new HttpError(
          'storage_unavailable',
          'the upload moved to other storage nodes meanwhile; send the chunk again',
          {
            retryAfter: 1,
          },
        );
      }
      return this.hashes.offer(upload.id, epoch, index, { data, blocks });
    }
    return false;
  }

  /**
   * Checks the verdict and publishes. The work runs detached from the request: when it outlasts
   * `completeWaitMs` (hash state lost, chunks read back), the caller gets `upload_busy` and asks
   * again, so no request is held for minutes, and a second caller never starts the work twice.
   */
  async complete(
    userId: string,
    uploadId: string,
    declaredSha1?: string,
    /**
     * For protocols whose clients never say the hash (tus, WebDAV): the server's own verdict names
     * the content. Everything is still verified; there is just no declaration to compare with.
     */
    options: { hashUnknown?: boolean; place?: PlaceFile; link?: string } = {},
  ): Promise<CompleteUploadResponse> {
    const upload = await this.row(userId, uploadId, options.link);
    if (upload.status === 'complete' && upload.file_id) {
      const owner = (await this.repos.files.ownerOf(upload.file_id))?.user_id ?? userId;
      return { status: 'complete', file: await this.files.get(owner, upload.file_id) };
    }
    this.assertOpen(upload);
    const sha1 = upload.sha1 ?? declaredSha1?.toLowerCase() ?? null;
    if (!sha1 && !options.hashUnknown)
      throw new HttpError('sha1_required', 'this upload was opened without a sha1: complete it with {sha1}');
    if (upload.sha1 && declaredSha1 && declaredSha1.toLowerCase() !== upload.sha1) {
      await this.discard(upload);
      this.metrics?.uploadsFailed.inc({ reason: 'verification' });
      throw new HttpError(
        'hash_mismatch',
        'the sha1 given at complete differs from the one declared at create',
        {
          expected: upload.sha1,
          actual: declaredSha1.toLowerCase(),
        },
      );
    }
    // Already running here: like a holder elsewhere, the caller is told to ask again.
    if (this.completing.has(uploadId)) throw busy();
    const now = this.now();
    if (upload.status === 'completing' && Number(upload.lease_until ?? 0) >= now) throw busy();
    const chunks = await this.repos.uploads.chunks(upload.id);
    const have = new Set(chunks.map((c) => c.idx));
    const missing = Array.from({ length: upload.chunk_count }, (_, i) => i).filter((i) => !have.has(i));
    if (missing.length > 0) {
      throw new HttpError('incomplete', `${missing.length} chunk(s) missing`, { missing });
    }
    if (!(await this.repos.uploads.beginComplete(upload.id, now, now + this.limits.completeLeaseMs)))
      throw busy();
    const work = this.runComplete(userId, { ...upload, status: 'completing' }, sha1, options.place).finally(
      () => this.completing.delete(uploadId),
    );
    work.catch(() => undefined);
    this.completing.set(uploadId, work);
    return this.waitBounded(work);
  }

  private waitBounded(work: Promise<CompleteUploadResponse>): Promise<CompleteUploadResponse> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(busy('the upload is still being verified')),
        this.limits.completeWaitMs,
      );
    });
    return Promise.race([work, late]).finally(() => clearTimeout(timer));
  }

  /**
   * A `complete` running in this process, to be awaited whole by a protocol that has no way to
   * ask again later (a Nextcloud client's final MOVE); undefined when none runs here.
   */
  running(uploadId: string): Promise<CompleteUploadResponse> | undefined {
    return this.completing.get(uploadId);
  }

  private async runComplete(
    userId: string,
    upload: UploadRow,
    declared: string | null,
    place?: PlaceFile,
  ): Promise<CompleteUploadResponse> {
    const renew = setInterval(() => {
      this.repos.uploads
        .renewLease(upload.id, this.now() + this.limits.completeLeaseMs)
        .catch((err) => this.log.warn({ err }, 'could not renew a complete lease'));
    }, this.limits.completeLeaseMs / 3);
    renew.unref();
    const started = this.now();
    try {
      const { epoch, nodeIds } = await this.parts.targets(upload);
      if (nodeIds.length === 0) {
        throw new HttpError('storage_unavailable', "the upload's storage nodes are down; retry shortly", {
          retryAfter: 5,
        });
      }
      const digests = await this.verdict(upload, epoch, nodeIds, declared);
      const sha1 = declared ?? digests.sha1;
      if (digests.sha1 !== sha1 || digests.size !== Number(upload.size)) {
        await this.discard(upload);
        throw new HttpError('hash_mismatch', 'the uploaded bytes do not hash to the declared sha1', {
          expected: sha1,
          actual: digests.sha1,
        });
      }
      let content: ContentRow;
      try {
        content = await this.contents.acceptVerified(
          digests,
          (key) => this.parts.commit(upload.id, nodeIds, key, digests.size),
          () => this.parts.discard(upload.id, nodeIds),
        );
      } catch (error) {
        if (error instanceof HttpError && error.code === 'content_collision') await this.discard(upload);
        throw error;
      }
      // Whose tree the file joins: the uploader's, or the owner of the shared folder it goes to
      // (asked again now: a share revoked meanwhile no longer takes it).
      const ownerId = place ? userId : await this.placeOwner(userId, upload.parent_id);
      const file = await this.repos.transaction(async (tx) => {
        // The user's row before the content's, in the order every quota check takes them.
        await tx.users.findForUpdate(ownerId);
        // The owner's quota held no reservation for the uploader's session: counted now.
        if (ownerId !== userId)
          await this.userLimits.assertRoom(ownerId, { bytes: Number(upload.size), entries: 1 }, tx);
        const entry = place
          ? await place(tx, content)
          : await this.placeAsCreated(ownerId, upload, content, tx);
        await tx.uploads.transition(upload.id, 'completing', 'complete', {
          file_id: entry.id,
          lease_until: null,
        });
        return entry;
      });
      this.verdicts.delete(upload.id);
      this.metrics?.uploadsCompleted.inc({ kind: 'stored' });
      this.log.info({ uploadId: upload.id, ms: this.now() - started, size: digests.size }, 'upload complete');
      return { status: 'complete', file };
    } catch (error) {
      const gone =
        error instanceof HttpError && (error.code === 'hash_mismatch' || error.code === 'content_collision');
      if (gone) this.metrics?.uploadsFailed.inc({ reason: 'verification' });
      if (!gone) {
        await this.repos.uploads
          .transition(upload.id, 'completing', 'open', { lease_until: null })
          .catch((err) => this.log.warn({ err }, 'could not reopen an upload'));
      }
      throw error;
    } finally {
      clearInterval(renew);
    }
  }

  /**
   * The owner of the folder an upload goes to, when the uploader may still write there; the
   * uploader themselves otherwise (the file then lands at their root, as for a trashed folder).
   */
  private async placeOwner(userId: string, parentId: string): Promise<string> {
    if (parentId === '') return userId;
    try {
      return (await this.access.parent(userId, parentId)).ownerId;
    } catch (error) {
      if (error instanceof HttpError && (error.code === 'not_found' || error.code === 'forbidden'))
        return userId;
      throw error;
    }
  }

  /** The file an upload makes by default: its name, in its folder (or at the root, see below). */
  private async placeAsCreated(
    userId: string,
    upload: UploadRow,
    content: ContentRow,
    tx: Repositories,
  ): Promise<FileEntry> {
    // A folder trashed while its upload ran no longer takes files: the file lands at the root.
    // Anything else (a database error) fails the complete, to be retried.
    const parentId = await this.files.resolveParent(userId, upload.parent_id, tx).catch((error: unknown) => {
      if (error instanceof HttpError && (error.code === 'not_found' || error.code === 'not_a_folder'))
        return '';
      throw error;
    });
    return this.files.placeFile(
      {
        userId,
        parentId,
        name: upload.name,
        contentId: content.id,
        sha1: content.sha1,
        size: Number(content.size),
        ...(upload.mtime == null ? {} : { mtime: Number(upload.mtime) }),
      },
      upload.on_conflict ?? 'rename',
      tx,
    );
  }

  /**
   * The server's own whole-file digests: from the hashes computed as the chunks passed through
   * this process, reading back from a node only the chunks it did not see.
   */
  private async verdict(
    upload: UploadRow,
    epoch: number,
    nodeIds: string[],
    sha1: string | null,
  ): Promise<UploadDigests> {
    const cached = this.verdicts.get(upload.id);
    if (cached && cached.epoch === epoch) return cached.digests;
    const chunks = await this.repos.uploads.chunks(upload.id);
    const { digests, reread } = await this.hashes.finish(upload.id, epoch, upload.chunk_count, (index) => {
      const chunk = chunks[index];
      if (!chunk || chunk.idx !== index)
        throw new HttpError('incomplete', `chunk ${index} missing`, { missing: [index] });
      return this.parts.readChunk(
        upload,
        nodeIds,
        {
          offset: chunkRange(Number(upload.size), upload.chunk_size, index).start,
          size: Number(chunk.size),
          sha256: chunk.sha256,
        },
        // Where an interrupted complete may have published the part; unknown without a hash.
        sha1 ? objectKey(sha1) : null,
      );
    });
    if (reread > 0) {
      this.log.info(
        { uploadId: upload.id, chunks: reread, of: upload.chunk_count },
        'chunks passed through another instance (or before a restart): read back to hash them',
      );
    }
    this.verdicts.set(upload.id, { epoch, digests });
    if (this.verdicts.size > 1000) this.verdicts.delete(this.verdicts.keys().next().value as string);
    return digests;
  }

  /** Removes an upload whose bytes are not what was declared: rows and parts, nothing registered. */
  private async discard(upload: UploadRow): Promise<void> {
    const nodes = await this.repos.uploads.nodes(upload.id);
    await this.repos.uploads.delete(upload.id);
    this.hashes.forget(upload.id);
    this.verdicts.delete(upload.id);
    await this.parts.discard(
      upload.id,
      nodes.map((n) => n.node_id),
    );
  }

  /**
   * Stores a request body as content (hashed as it streams to the nodes, known bytes deduped),
   * refusing it up front when the user has no room; registers no file. For protocols that decide
   * the file row themselves (a WebDAV PUT that may overwrite).
   */
  async storeBody(userId: string, body: Readable, requestBytes: number | null): Promise<ContentRow> {
    const content = await this.storeWithinLimits(userId, body, {
      requestBytes,
      upfrontBytes: requestBytes ?? 0,
      entries: 0,
    });
    // The protocol places the file itself; what could still refuse it was checked before the body.
    this.metrics?.uploadsCompleted.inc({ kind: 'stored' });
    return content;
  }

  /**
   * Refuses a big body before a byte is read when the user is already at a bound (a small one is
   * in memory at once and the later checks refuse it as early), then stores it, checking the
   * room again once its size is known.
   */
  private async storeWithinLimits(
    userId: string,
    body: Readable,
    room: { requestBytes: number | null; upfrontBytes: number; entries: number },
    declaredSha1?: string,
  ): Promise<ContentRow> {
    const { requestBytes, upfrontBytes, entries } = room;
    // A body that streams stops at the quota's remaining bytes rather than being read (and
    // stored) whole before its size is checked.
    const left =
      requestBytes === null || requestBytes > this.limits.chunkSize
        ? await this.userLimits.roomLeft(userId, { bytes: upfrontBytes, entries }, this.repos)
        : undefined;
    const memory = this.memory.take(userId, 0);
    this.metrics?.uploadsStarted.inc();
    try {
      const content = await this.single.store(
        body,
        declaredSha1,
        (size) => this.userLimits.assertRoom(userId, { bytes: size, entries }, this.repos),
        {
          expectedBytes: requestBytes,
          ...(left ? { maxBytes: left.bytes + upfrontBytes, tooBig: left.exceeded } : {}),
          memory,
        },
      );
      // A one-request body counts once it is read whole (and stored, or found already stored).
      this.metrics?.bytesReceived.inc(Number(content.size));
      return content;
    } catch (error) {
      if (
        error instanceof HttpError &&
        (error.code === 'hash_mismatch' || error.code === 'content_collision')
      )
        this.metrics?.uploadsFailed.inc({ reason: 'verification' });
      throw error;
    } finally {
      memory.release();
    }
  }

  /** The one-request path (`POST /api/files`): same verification and dedupe, no staging. */
  async uploadSingle(
    userId: string,
    parentIdInput: string | undefined,
    name: string,
    body: Readable,
    declaredSha1?: string,
    /** The request's Content-Length (an upper bound of the file's size), when it has one. */
    requestBytes: number | null = null,
    /**
     * The folder as known once the whole body is read (a form field may follow the file part);
     * by default the one given up front.
     */
    finalParentId?: () => Promise<string | undefined>,
    /** The source's modification time (epoch ms), asked for once the body is read. */
    mtime?: () => number | undefined,
    /** The rule for a taken name, asked for before the body and once it is read. */
    onConflict: () => OnConflict = () => 'rename',
  ): Promise<FileEntry> {
    assertValidName(name);
    let { ownerId } = await this.access.parent(userId, parentIdInput);
    let parentId = await this.files.resolveParent(ownerId, parentIdInput);
    await this.files.assertPlaceable(ownerId, parentId, name, onConflict());
    // A multipart body's length only bounds the file's size: nothing is counted for it up front.
    const content = await this.storeWithinLimits(
      ownerId,
      body,
      { requestBytes, upfrontBytes: 0, entries: 1 },
      declaredSha1?.toLowerCase(),
    );
    // Asked again once the body is in: a form field may name the folder only after the file, and
    // a share revoked (or lowered to viewer) while the body streamed no longer takes the file.
    const late = finalParentId ? await finalParentId() : parentIdInput;
    if (late !== parentIdInput || ownerId !== userId) {
      ownerId = (await this.access.parent(userId, late)).ownerId;
      parentId = await this.files.resolveParent(ownerId, late);
    }
    const modified = mtime?.();
    const file = await this.files.addFileWithinLimits(
      { userId: ownerId, parentId, name, ...(modified === undefined ? {} : { mtime: modified }) },
      content,
      onConflict(),
    );
    this.metrics?.uploadsCompleted.inc({ kind: 'stored' });
    return file;
  }

  /**
   * Frees an upload and its part files — but not under a running `complete`: that answers 409
   * (the complete's outcome stands) rather than pulling the parts from under it.
   */
  async abort(userId: string, uploadId: string, link?: string): Promise<void> {
    const upload = await this.row(userId, uploadId, link);
    if (!(await this.repos.uploads.deleteUnlessCompleting(upload.id, this.now()))) {
      throw new HttpError('upload_busy', 'this upload is being completed; it cannot be aborted now', {
        retryAfter: 2,
      });
    }
    this.hashes.forget(upload.id);
    this.metrics?.uploadsFailed.inc({ reason: 'aborted' });
    await this.parts.discardEverywhere(upload.id);
  }
}

/** How far an upload's expiry may lag behind its last chunk (see `touch`). */
const TOUCH_EVERY_MS = 60_000;

/** A writer silent this long is presumed dead; node writes time out well before it. */
const CLAIM_STALE_MS = 120_000;

function mismatch(index: number, checksum: ChunkChecksum | undefined): HttpError {
  const header = checksum?.algorithm === 'crc32c' ? 'Content-Digest (crc32c)' : 'Content-MD5';
  return new HttpError('checksum_mismatch', `chunk ${index} does not match its ${header}`);
}

function busy(message = 'this upload is being completed by another request'): HttpError {
  return new HttpError('upload_busy', message, { retryAfter: 2 });
}
