import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { chunkRange, type FileEntry, type OnConflict, parseOnConflict } from '@dfs/shared';
import type { FastifyBaseLogger } from 'fastify';
import { HttpError, notFound } from '../errors.ts';
import type { Repositories } from '../repositories/index.ts';
import type { TusUploadRow } from '../repositories/tus-uploads.ts';
import type { UploadRow } from '../repositories/uploads.ts';
import { bodyPieces, type MemoryLease } from './body-memory.ts';
import type { FileService } from './files.ts';
import { newToken } from './ids.ts';
import type { UserLimits } from './limits.ts';
import { mtimeFromText } from './mtime.ts';
import { AccessService } from './sharing/access.ts';
import type { UploadParts } from './upload-parts.ts';
import type { PlaceFile, UploadService } from './uploads.ts';

/** `Upload-Metadata`: comma-separated `key base64value` pairs (a key alone means an empty value). */
export function parseMetadata(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const pair of header.split(',')) {
    const [key, value, extra] = pair.trim().split(' ');
    if (!key || extra !== undefined || out.has(key) || !/^[\x21-\x7e]+$/.test(key)) {
      throw new HttpError('bad_request', 'Upload-Metadata must be comma-separated "key base64" pairs');
    }
    if (value !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
      throw new HttpError('bad_request', `Upload-Metadata value of "${key}" is not base64`);
    }
    out.set(key, value === undefined ? '' : Buffer.from(value, 'base64').toString('utf8'));
  }
  return out;
}

/**
 * The part that holds a tus upload's unfinished chunk: `<upload id>-t<suffix>`, so the stray
 * sweep keeps it exactly as long as its upload (see `uploadOfPart`).
 */
export function tailPartId(uploadId: string, suffix: string): string {
  return `${uploadId}-t${suffix}`;
}

/** The upload a part belongs to: itself, or the upload of a tus tail part. */
export function uploadOfPart(partId: string): string {
  const uuid = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-t[0-9a-z]+$/.exec(partId);
  return uuid?.[1] ?? partId;
}

/** How long a PATCH holds its upload without renewing (a crashed instance's lease runs out). */
const PATCH_LEASE_MS = 30_000;

function assertOffset(row: TusUploadRow, offset: number): void {
  if (offset !== Number(row.offset)) {
    throw new HttpError('offset_mismatch', `Upload-Offset must be ${row.offset}, the bytes received so far`, {
      offset: Number(row.offset),
    });
  }
}

/** A PATCH with `Upload-Checksum` is held in memory to be checked before any byte is kept. */
export const TUS_CHECKSUM_MAX_BYTES = 64 * 1024 * 1024;

export interface TusState {
  id: string;
  offset: number;
  length: number;
  metadata: string;
  expiresAt: number;
  /** Set once the last byte is in and the file is registered. */
  file: FileEntry | null;
}

/**
 * tus 1.0 (core, creation, creation-with-upload, termination, expiration, checksum/sha1) on top
 * of the ordinary upload sessions: whole chunks go through the same path as `PUT chunks/:i`
 * (straight to the upload's nodes, hashed in order, any instance), and the bytes past the last
 * whole chunk — a PATCH may end anywhere — are kept durably in a small tail part on the same
 * nodes until the chunk fills. An acknowledged offset therefore survives a restart of the app.
 * The last byte completes the upload: verified SHA-1 and SHA-256, dedupe, replicas, like any file.
 */
export class TusService {
  constructor(
    private readonly repos: Repositories,
    private readonly uploads: UploadService,
    private readonly parts: UploadParts,
    private readonly files: FileService,
    private readonly log: FastifyBaseLogger,
    private readonly now: () => number,
    /** A body that sends nothing this long while awaited fails (0: never). */
    private readonly idleMs = 0,
    /** The quotas an upload into a folder shared with the uploader is checked against. */
    private readonly limits?: UserLimits,
  ) {
    this.access = new AccessService(repos);
  }

  private readonly access: AccessService;

  /**
   * Where an upload into a folder shared with the uploader goes: the folder's owner's tree,
   * under the owner's quota; undefined for the uploader's own folders (the upload session says
   * where). The session itself stays the uploader's, so they alone resume it.
   */
  private async sharedTarget(
    userId: string,
    metadata: string,
  ): Promise<
    { ownerId: string; parentId: string; name: string; onConflict: OnConflict; mtime?: number } | undefined
  > {
    const meta = parseMetadata(metadata);
    const parentId = meta.get('parentId');
    if (!parentId) return undefined;
    const entry = await this.repos.files.ownerOf(parentId);
    if (entry?.user_id === userId) return undefined;
    const { ownerId } = await this.access.parent(userId, parentId);
    const mtimeText = meta.get('mtime');
    const mtime = mtimeText ? mtimeFromText(mtimeText, this.now()) : undefined;
    const rule = meta.get('onConflict');
    return {
      ownerId,
      parentId: await this.files.resolveParent(ownerId, parentId),
      name: meta.get('filename') ?? meta.get('name') ?? 'upload',
      onConflict: (rule ? parseOnConflict(rule) : undefined) ?? 'rename',
      ...(mtime === undefined ? {} : { mtime }),
    };
  }

  /**
   * `sharedTarget` for a session under way: a share revoked (or lowered to viewer, or its folder
   * trashed) since creation no longer takes the file, but the bytes already acknowledged stay the
   * uploader's. The upload goes on and lands at their own root, as a chunked upload does.
   */
  private async sharedTargetNow(userId: string, metadata: string) {
    try {
      return await this.sharedTarget(userId, metadata);
    } catch (error) {
      if (error instanceof HttpError && (error.code === 'not_found' || error.code === 'forbidden'))
        return undefined;
      throw error;
    }
  }

  /** The file a finished upload into a shared folder becomes: the owner's, counted against their quota. */
  private placeShared(target: NonNullable<Awaited<ReturnType<TusService['sharedTarget']>>>): PlaceFile {
    return async (tx, content) => {
      const parentId = await this.files.resolveParent(target.ownerId, target.parentId, tx);
      await this.limits?.assertRoom(target.ownerId, { bytes: Number(content.size), entries: 1 }, tx);
      return this.files.placeFile(
        {
          userId: target.ownerId,
          parentId,
          name: target.name,
          contentId: content.id,
          sha1: content.sha1,
          size: Number(content.size),
          ...(target.mtime === undefined ? {} : { mtime: target.mtime }),
        },
        target.onConflict,
        tx,
      );
    };
  }

  async create(
    userId: string,
    input: {
      length: number;
      filename: string;
      parentId?: string;
      metadata: string;
      mtime?: number;
      onConflict?: OnConflict;
    },
  ): Promise<TusState> {
    // Into a folder shared with the user: refused now for a viewer (403), and the owner's quota
    // and name rule are checked before any byte comes. The session is opened in the user's own
    // space (no folder, no name rule: those are the owner's, applied when the last byte is in).
    const shared = await this.sharedTarget(userId, input.metadata);
    if (shared) {
      await this.files.assertPlaceable(shared.ownerId, shared.parentId, input.filename, shared.onConflict);
      if (this.limits) {
        const limits = this.limits;
        await this.repos.transaction((tx) =>
          limits.assertRoom(shared.ownerId, { bytes: input.length, entries: 1 }, tx),
        );
      }
    }
    const res = await this.uploads.create(userId, {
      name: input.filename,
      size: input.length,
      ...(input.parentId && !shared ? { parentId: input.parentId } : {}),
      ...(input.onConflict && !shared ? { onConflict: input.onConflict } : {}),
      ...(input.mtime === undefined ? {} : { mtime: new Date(input.mtime).toISOString() }),
    });
    if (res.status !== 'created' && res.status !== 'resumed') {
      throw new HttpError('internal', 'an upload without a hash was answered as known content');
    }
    await this.repos.tusUploads.insert({
      id: res.uploadId,
      user_id: userId,
      offset: 0,
      tail_part: null,
      metadata: input.metadata,
      file_id: null,
      created_at: this.now(),
    });
    return {
      id: res.uploadId,
      offset: 0,
      length: input.length,
      metadata: input.metadata,
      expiresAt: Date.parse(res.expiresAt),
      file: null,
    };
  }

  async state(userId: string, id: string): Promise<TusState> {
    const { row, upload } = await this.load(userId, id);
    const file = row.file_id ? await this.fileOf(userId, row.file_id) : null;
    return {
      id,
      offset: Number(row.offset),
      length: Number(upload.size),
      metadata: row.metadata,
      expiresAt: Number(upload.expires_at),
      file,
    };
  }

  /**
   * Appends a PATCH body at `offset`. Whole chunks are stored as they fill; whatever is left at
   * the end — or when the client goes away mid-body — becomes the new tail, so the offset
   * answered (or found by the next HEAD) covers every byte that arrived.
   */
  async append(
    userId: string,
    id: string,
    offset: number,
    /** Absent for a creation without a body (an empty file): no bytes. */
    body: Readable | undefined,
    checksum?: { algorithm: 'sha1'; digest: Buffer },
    /** The body's Content-Length when the request has one: too long is refused before reading. */
    bodyLength?: number,
    /**
     * Whether the last byte completes the upload (tus). Nextcloud's chunked upload names its file
     * only at the final MOVE, which completes it then.
     */
    finish = true,
  ): Promise<TusState> {
    const loaded = await this.load(userId, id);
    if (loaded.upload.status === 'complete' || loaded.row.file_id) return this.state(userId, id);
    assertOffset(loaded.row, offset);
    const size = Number(loaded.upload.size);
    if (bodyLength !== undefined && Number.isSafeInteger(bodyLength) && offset + bodyLength > size) {
      throw new HttpError(
        'payload_too_large',
        `the upload is ${size} bytes; this body would go past its end`,
      );
    }
    // One PATCH at a time: a second one racing at the same offset is refused (409) rather than
    // storing some of its bytes beside the first one's.
    const token = newToken(12);
    if (!(await this.repos.tusUploads.claimPatch(id, token, this.now(), this.now() + PATCH_LEASE_MS))) {
      throw new HttpError('upload_busy', 'another PATCH is writing to this upload; ask HEAD for the offset', {
        retryAfter: 2,
      });
    }
    const renew = setInterval(() => {
      this.repos.tusUploads
        .renewPatch(id, token, this.now() + PATCH_LEASE_MS)
        .catch((err) => this.log.warn({ err, uploadId: id }, 'could not renew a tus PATCH lease'));
    }, PATCH_LEASE_MS / 3);
    renew.unref();
    try {
      // Read again under the lease: a PATCH that finished meanwhile moved the offset.
      const { row, upload } = await this.load(userId, id);
      if (upload.status === 'complete' || row.file_id) return await this.state(userId, id);
      assertOffset(row, offset);
      return await this.appendHeld(userId, row, upload, offset, body, checksum, finish);
    } finally {
      clearInterval(renew);
      await this.repos.tusUploads
        .releasePatch(id, token)
        .catch((err) => this.log.warn({ err, uploadId: id }, 'could not release a tus PATCH lease'));
    }
  }

  /** `append` under the upload's PATCH lease. */
  private async appendHeld(
    userId: string,
    row: TusUploadRow,
    upload: UploadRow,
    offset: number,
    body: Readable | undefined,
    checksum: { algorithm: 'sha1'; digest: Buffer } | undefined,
    finish: boolean,
  ): Promise<TusState> {
    // Bytes of this request held in memory: a checked body whole, else the unfinished chunk.
    const memory = this.uploads.memory.take(userId, 0);
    try {
      return await this.appendBytes(
        userId,
        row,
        upload,
        offset,
        body ?? Readable.from([]),
        checksum,
        memory,
        finish,
      );
    } finally {
      memory.release();
    }
  }

  private async appendBytes(
    userId: string,
    row: TusUploadRow,
    upload: UploadRow,
    offset: number,
    body: Readable,
    checksum: { algorithm: 'sha1'; digest: Buffer } | undefined,
    memory: MemoryLease,
    finish: boolean,
  ): Promise<TusState> {
    const id = row.id;
    const size = Number(upload.size);
    const source = checksum ? await this.checked(body, checksum, memory) : body;
    const chunkSize = upload.chunk_size;
    const { nodeIds } = await this.parts.targets(upload, true);

    let index = Math.floor(offset / chunkSize);
    let acked = offset;
    let tail = row.tail_part;
    const pending: Buffer[] = [];
    let pendingLength = 0;
    if (offset > index * chunkSize && offset < size) {
      if (!tail) throw new HttpError('internal', 'the bytes of an unfinished chunk are not on record');
      memory.grow(offset - index * chunkSize);
      pending.push(await this.parts.readPartPrefix(tail, nodeIds, offset - index * chunkSize));
      pendingLength = pending[0]!.length;
    }
    /** Where the chunk being filled ends (exclusive). */
    const chunkEnd = () => chunkRange(size, chunkSize, index).end;

    const moveTo = async (to: number, newTail: string | null) => {
      if (!(await this.repos.tusUploads.advance(id, acked, to, newTail))) {
        throw new HttpError(
          'offset_mismatch',
          'another request moved this upload meanwhile; ask HEAD for the offset',
        );
      }
      if (tail && tail !== newTail) await this.parts.discard(tail, nodeIds).catch(() => undefined);
      acked = to;
      tail = newTail;
    };

    const storeWholeChunk = async (data: Buffer) => {
      await this.uploads.putChunkBytes(upload, index, data);
      index++;
      await moveTo(index >= upload.chunk_count ? size : index * chunkSize, null);
    };

    const keepTail = async () => {
      if (pendingLength === 0 || index * chunkSize + pendingLength === acked) return;
      const data = Buffer.concat(pending, pendingLength);
      const part = tailPartId(id, `${this.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`);
      const written = await this.parts.writeTo(part, nodeIds, 0, data, { chunkSize });
      if (written.length === 0) {
        throw new HttpError(
          'storage_unavailable',
          "the upload's storage nodes are unavailable; retry shortly",
          {
            retryAfter: 5,
          },
        );
      }
      await moveTo(index * chunkSize + pendingLength, part);
    };

    try {
      for await (const piece of bodyPieces(source, checksum ? 0 : this.idleMs)) {
        let data = piece;
        // A checked body was counted whole as it arrived.
        if (!checksum) memory.grow(data.length);
        while (data.length > 0) {
          if (index >= upload.chunk_count) {
            throw new HttpError(
              'payload_too_large',
              `the upload is ${size} bytes; the body goes past its end`,
            );
          }
          const filled = index * chunkSize + pendingLength;
          const take = data.subarray(0, chunkEnd() - filled);
          pending.push(take);
          pendingLength += take.length;
          data = data.subarray(take.length);
          if (index * chunkSize + pendingLength === chunkEnd()) {
            const whole = Buffer.concat(pending, pendingLength);
            pending.length = 0;
            pendingLength = 0;
            await storeWholeChunk(whole);
            if (!checksum) memory.shrink(whole.length);
          }
        }
      }
    } catch (error) {
      // The client went away (or sent too much): what did arrive is still kept, and a file whose
      // every byte is in is finished, so that a client that stops at the offset finds it done.
      await keepTail().catch((err) => this.log.warn({ err, uploadId: id }, 'could not keep a tus tail'));
      if (finish && acked === size) await this.finish(userId, id).catch(() => undefined);
      throw error;
    }
    await keepTail();

    if (finish && acked === size)
      return { ...(await this.state(userId, id)), file: await this.finish(userId, id) };
    return this.state(userId, id);
  }

  /** The last byte is in: the upload completes like any other (verified, deduped, replicated). */
  private async finish(userId: string, id: string): Promise<FileEntry> {
    const { row } = await this.load(userId, id);
    const shared = await this.sharedTargetNow(userId, row.metadata);
    const done = await this.uploads.complete(userId, id, undefined, {
      hashUnknown: true,
      ...(shared ? { place: this.placeShared(shared) } : {}),
    });
    await this.repos.tusUploads.setFile(id, done.file.id);
    return done.file;
  }

  /** Termination: the upload and every byte of it go. */
  async terminate(userId: string, id: string): Promise<void> {
    const { row, upload } = await this.load(userId, id);
    if (row.tail_part) {
      const { nodeIds } = await this.parts.targets(upload);
      await this.parts.discard(row.tail_part, nodeIds).catch(() => undefined);
    }
    await this.uploads.abort(userId, id);
  }

  /** The body, read whole (bounded) and checked against `Upload-Checksum` before anything is kept. */
  private async checked(
    body: Readable,
    checksum: { digest: Buffer },
    memory: MemoryLease,
  ): Promise<Readable> {
    const pieces: Buffer[] = [];
    let length = 0;
    const hash = createHash('sha1');
    for await (const data of bodyPieces(body, this.idleMs)) {
      length += data.length;
      memory.grow(data.length);
      if (length > TUS_CHECKSUM_MAX_BYTES) {
        throw new HttpError(
          'payload_too_large',
          `a PATCH with Upload-Checksum may carry at most ${TUS_CHECKSUM_MAX_BYTES} bytes`,
        );
      }
      hash.update(data);
      pieces.push(data);
    }
    if (!hash.digest().equals(checksum.digest)) {
      throw new HttpError('checksum_failed', 'the body does not match its Upload-Checksum; nothing was kept');
    }
    return Readable.from(pieces);
  }

  private async load(userId: string, id: string): Promise<{ row: TusUploadRow; upload: UploadRow }> {
    const row = await this.repos.tusUploads.find(userId, id);
    const upload = row ? await this.repos.uploads.find(userId, id) : undefined;
    if (!row || !upload || upload.user_id !== userId) throw notFound('no such tus upload');
    if (upload.status !== 'complete' && Number(upload.expires_at) <= this.now()) {
      throw new HttpError('upload_expired', 'this upload expired; start it again');
    }
    return { row, upload };
  }

  /** The file an upload made: the user's, or (an upload into a share) its owner's. */
  private async fileOf(userId: string, fileId: string): Promise<FileEntry | null> {
    const owner = (await this.repos.files.ownerOf(fileId))?.user_id ?? userId;
    return this.files.get(owner, fileId).catch(() => null);
  }
}
