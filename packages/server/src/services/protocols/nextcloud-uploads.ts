import { Readable } from 'node:stream';
import { type FileEntry, nameProblem } from '@dfs/shared';
import { isUniqueViolation } from '../../db/knex.ts';
import { HttpError, notFound } from '../../errors.ts';
import type { Repositories } from '../../repositories/index.ts';
import type { NcChunkRow, NcUploadRow } from '../../repositories/nc-uploads.ts';
import type { FileService } from '../files.ts';
import { newId } from '../ids.ts';
import type { UserLimits } from '../limits.ts';
import type { TusService } from '../tus.ts';
import type { PlaceFile, UploadService } from '../uploads.ts';
import { type DavService, splitMount } from '../webdav.ts';

/** Nextcloud's transfer ids are numbers; rclone's are `rclone-chunked-upload-<md5>`. */
const TRANSFER_ID = /^[A-Za-z0-9._~-]{1,200}$/;
/** Chunk names: an index (16 digits in 3.x clients, 5 in current ones) or rclone's `start-end`. */
const CHUNK_NAME = /^(\d{1,20})(?:-(\d{1,20}))?$/;
/** How long a session that never learnt its length is kept (Nextcloud expires uploads after a day). */
export const NC_SESSION_TTL_MS = 24 * 60 * 60 * 1000;
/** A final MOVE waits this long for a complete another instance is running. */
const OTHER_INSTANCE_WAIT_MS = 10 * 60 * 1000;

export interface ChunkInput {
  /** `OC-Chunk-Offset`: where the chunk starts in the file. */
  offset?: number;
  /** `OC-Total-Length` (current clients send it with every chunk). */
  totalLength?: number;
  /** The body's Content-Length, when the request has one. */
  length?: number;
}

export interface AssembleInput {
  /** The target, as names below the user's root. */
  path: string[];
  /** `OC-Total-Length`, checked against the bytes received. */
  totalLength?: number;
  /** The SHA-1 of `OC-Checksum: SHA1:<hex>`, checked against the server's own. */
  sha1?: string;
  /** `X-OC-Mtime`, in epoch ms. */
  mtime?: number;
}

function chunkStart(name: string): number | undefined {
  const m = CHUNK_NAME.exec(name);
  return m?.[2] === undefined ? undefined : Number(m[1]);
}

/** Chunk names in upload order: by number, and rclone's `start-end` by start. */
function compareNames(a: string, b: string): number {
  const x = BigInt(CHUNK_NAME.exec(a)?.[1] ?? '0');
  const y = BigInt(CHUNK_NAME.exec(b)?.[1] ?? '0');
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The body without its first `skip` bytes (bytes this upload already holds). */
async function* skipping(body: Readable, skip: number): AsyncGenerator<Buffer> {
  let left = skip;
  for await (const piece of body) {
    const data = piece as Buffer;
    if (left >= data.length) {
      left -= data.length;
      continue;
    }
    yield left > 0 ? data.subarray(left) : data;
    left = 0;
  }
}

/**
 * Nextcloud's chunked upload v2 (`/remote.php/dav/uploads/<user>/<transfer id>`), as the desktop
 * and mobile clients and rclone send it, on dfs's own upload sessions: each chunk's bytes are
 * appended to a tus-style session as they arrive (whole dfs chunks straight to the nodes, hashed
 * in order; the rest kept durably as a tail part), so a restart of the app loses no acknowledged
 * chunk. The final MOVE only completes the session — the server's SHA-1 and SHA-256 are already
 * known, so no pass over the bytes is made — and places the content at the target, giving an
 * existing file the new content under its own id.
 *
 * Chunks must arrive in file order, which every client does (3.x and current desktop clients and
 * rclone send one file's chunks one after another). A chunk that repeats bytes already held (a
 * retry after a cut connection) is accepted: the held bytes are not sent twice to the nodes, and
 * the whole file's SHA-1 is checked against the client's `OC-Checksum` at the end.
 */
export class NextcloudUploads {
  constructor(
    private readonly repos: Repositories,
    private readonly uploads: UploadService,
    private readonly tus: TusService,
    private readonly files: FileService,
    private readonly dav: DavService,
    private readonly limits: UserLimits,
    private readonly now: () => number,
  ) {}

  /** MKCOL: a new upload folder. `totalLength` is known from 3.x and current clients. */
  async open(userId: string, transferId: string, totalLength?: number, destination?: string): Promise<void> {
    if (!TRANSFER_ID.test(transferId)) {
      throw new HttpError(
        'bad_request',
        'an upload folder is named with letters, digits, ".", "_", "~" or "-"',
      );
    }
    if (destination !== undefined) await this.assertDestination(userId, destination);
    if (await this.repos.ncUploads.find(userId, transferId)) {
      throw new HttpError(
        'method_not_allowed',
        'this upload folder already exists; DELETE it to start again',
      );
    }
    const row: NcUploadRow = {
      id: newId(),
      user_id: userId,
      transfer_id: transferId,
      upload_id: null,
      total_length: null,
      destination: destination ?? null,
      created_at: this.now(),
    };
    try {
      await this.repos.ncUploads.insert(row);
    } catch (error) {
      if (isUniqueViolation(error))
        throw new HttpError(
          'method_not_allowed',
          'this upload folder already exists; DELETE it to start again',
        );
      throw error;
    }
    if (totalLength !== undefined) {
      try {
        await this.attach(userId, row, totalLength);
      } catch (error) {
        // Nothing half-made stays behind: a folder over the quota is not a folder.
        await this.repos.ncUploads.delete(row.id);
        throw error;
      }
    }
  }

  /**
   * A MKCOL's `Destination` (current clients say where the upload goes): a folder shared with the
   * user as a viewer refuses it now (403), before any byte is sent. Anything else is for the
   * final MOVE to answer, which checks the target again.
   */
  private async assertDestination(userId: string, destination: string): Promise<void> {
    let pathname: string;
    try {
      pathname = new URL(destination, 'http://localhost').pathname;
    } catch {
      return;
    }
    const mount = splitMount(pathname);
    if (!mount) return;
    let path: string[];
    try {
      path = mount.rest
        .split('/')
        .filter((s) => s !== '')
        .map((s) => decodeURIComponent(s));
    } catch {
      return;
    }
    if (path.length > 0) await this.dav.assertWritable(userId, path);
  }

  /** The dfs upload session that holds the bytes, made once the total length is known. */
  private async attach(userId: string, row: NcUploadRow, totalLength: number): Promise<string> {
    // Only the session's own name (the final MOVE names the file): anything odd is just "upload".
    let name = '';
    try {
      name = decodeURIComponent(row.destination?.split('/').filter(Boolean).at(-1) ?? '');
    } catch {
      // not percent-encoded UTF-8
    }
    const state = await this.tus.create(userId, {
      length: totalLength,
      // The name is only the session's: the file is named by the final MOVE.
      filename: name !== '' && nameProblem(name) === null ? name : 'upload',
      metadata: '',
    });
    await this.repos.ncUploads.update(row.id, { upload_id: state.id, total_length: totalLength });
    row.upload_id = state.id;
    row.total_length = totalLength;
    return state.id;
  }

  private async session(userId: string, transferId: string): Promise<NcUploadRow> {
    const row = await this.repos.ncUploads.find(userId, transferId);
    if (!row) throw notFound('no such upload folder; MKCOL it first');
    return row;
  }

  /** PROPFIND: the chunks received, so a client resumes after them. */
  async chunks(userId: string, transferId: string): Promise<NcChunkRow[]> {
    const row = await this.session(userId, transferId);
    return this.repos.ncUploads.chunks(row.id);
  }

  /** PUT of one chunk: its bytes join the session at the chunk's place in the file. */
  async putChunk(
    userId: string,
    transferId: string,
    name: string,
    body: Readable,
    input: ChunkInput,
  ): Promise<void> {
    if (!CHUNK_NAME.test(name)) {
      body.resume();
      throw new HttpError(
        'bad_request',
        'a chunk is named by its number, or by its byte range as "start-end"',
      );
    }
    const row = await this.session(userId, transferId);
    if (
      input.totalLength !== undefined &&
      row.total_length !== null &&
      input.totalLength !== Number(row.total_length)
    ) {
      body.resume();
      throw new HttpError(
        'bad_request',
        `OC-Total-Length ${input.totalLength} differs from the upload's ${row.total_length}`,
      );
    }
    const total = row.total_length ?? input.totalLength;
    if (total === undefined || total === null) {
      body.resume();
      throw new HttpError('bad_request', 'OC-Total-Length is required (on MKCOL or on the chunk)');
    }
    const uploadId = row.upload_id ?? (await this.attach(userId, row, Number(total)));
    const recorded = await this.repos.ncUploads.chunks(row.id);
    // Where the chunk starts: said by the client, or read from rclone's name, or right after the
    // chunks named before it (every client sends them in order).
    const offset =
      input.offset ??
      chunkStart(name) ??
      recorded.filter((c) => compareNames(c.name, name) < 0).reduce((sum, c) => sum + Number(c.size), 0);
    const held = (await this.tus.state(userId, uploadId)).offset;
    if (offset > held) {
      body.resume();
      throw new HttpError(
        'offset_mismatch',
        `this chunk starts at byte ${offset}, but only ${held} bytes before it have arrived; send chunks in order`,
        { offset: held },
      );
    }
    if (input.length !== undefined && offset + input.length > Number(total)) {
      body.resume();
      throw new HttpError(
        'payload_too_large',
        `the upload is ${total} bytes; this chunk would go past its end`,
      );
    }
    const skip = held - offset;
    const state = await this.tus.append(
      userId,
      uploadId,
      held,
      skip > 0 ? Readable.from(skipping(body, skip)) : body,
      undefined,
      input.length === undefined ? undefined : Math.max(0, input.length - skip),
      false,
    );
    const size = input.length ?? Math.max(0, state.offset - offset);
    if (state.offset < offset + size) {
      throw new HttpError('bad_request', `the chunk ended after ${state.offset - offset} of ${size} bytes`);
    }
    await this.repos.ncUploads.putChunk({ nc_upload_id: row.id, name, offset, size });
  }

  /** DELETE of one chunk (a client dropping chunks past a gap): its record goes. */
  async deleteChunk(userId: string, transferId: string, name: string): Promise<void> {
    const row = await this.session(userId, transferId);
    if ((await this.repos.ncUploads.deleteChunk(row.id, name)) === 0) throw notFound('no such chunk');
  }

  /** DELETE of the upload folder: the session and every byte of it go. */
  async cancel(userId: string, transferId: string): Promise<void> {
    const row = await this.session(userId, transferId);
    const upload = row.upload_id ? await this.repos.uploads.find(userId, row.upload_id) : undefined;
    // A completed upload's bytes are a file's now: only the folder goes.
    if (upload && upload.status !== 'complete') await this.tus.terminate(userId, upload.id);
    await this.repos.ncUploads.delete(row.id);
  }

  /**
   * The final `MOVE …/.file`: every byte is in, so the upload completes (verified, stored once,
   * replicated) and its content becomes the file at `path` — a new file, or new content for the
   * file there (same id). Answers the file and whether it is new. A MOVE sent again after a
   * success answers the same file.
   */
  async assemble(
    userId: string,
    transferId: string,
    input: AssembleInput,
  ): Promise<{ file: FileEntry; created: boolean }> {
    const row = await this.session(userId, transferId);
    const total = row.total_length === null ? undefined : Number(row.total_length);
    if (input.totalLength !== undefined && total !== undefined && input.totalLength !== total) {
      throw new HttpError(
        'bad_request',
        `OC-Total-Length ${input.totalLength} differs from the upload's ${total}`,
      );
    }
    if (!row.upload_id) {
      if ((input.totalLength ?? total) !== 0)
        throw new HttpError('incomplete', 'no chunk of this upload has arrived');
      await this.attach(userId, row, 0);
    }
    const uploadId = row.upload_id!;
    const upload = await this.repos.uploads.find(userId, uploadId);
    if (upload?.status === 'complete' && upload.file_id) {
      const owner = (await this.repos.files.ownerOf(upload.file_id))?.user_id ?? userId;
      return { file: await this.files.get(owner, upload.file_id), created: false };
    }
    const state = await this.tus.state(userId, uploadId);
    if (state.offset !== state.length) {
      throw new HttpError('incomplete', `${state.offset} of ${state.length} bytes have arrived`, {
        missing: [],
      });
    }
    // Checked now for a clear answer before the work, and again inside the publishing transaction:
    // the folder may be trashed, or the name taken, while the upload completes. In a folder shared
    // with the user (as an editor: a viewer is refused here), the file is its owner's, counted
    // against the owner's quota.
    const { parentId, ownerId } = await this.dav.placeOf(userId, input.path);
    const name = input.path.at(-1)!;
    const existing = await this.dav.resolve(userId, input.path);
    if (existing?.kind === 'folder')
      throw new HttpError('method_not_allowed', 'a collection cannot be replaced by a file');
    const replacing = existing?.kind === 'file' ? existing.row : undefined;
    if (replacing) await this.dav.assertWritable(userId, input.path);
    // A file shared on its own sits at the top of the user's tree but is its owner's.
    const owner = replacing ? replacing.user_id : ownerId;
    const folder = replacing ? replacing.parent_id : parentId;
    let created = true;
    const place: PlaceFile = async (tx, content) => {
      const parent = await this.files
        .resolveParent(owner, folder === '' ? null : folder, tx)
        .catch(() => null);
      if (parent === null)
        throw new HttpError('name_conflict', 'the target folder is gone; move the upload elsewhere');
      const taken = replacing
        ? await tx.files.find(owner, replacing.id, 'active')
        : await tx.files.findLiveByName(owner, parent, name);
      if (taken?.kind === 'folder')
        throw new HttpError('method_not_allowed', 'a collection cannot be replaced by a file');
      if (taken) {
        created = false;
        return this.files.replaceContentIn(
          tx,
          owner,
          taken.id,
          content,
          (bytes, t) => this.limits.assertRoom(owner, { bytes, entries: 0 }, t),
          input.mtime,
        );
      }
      // The uploader's session reserved room in their own quota; the file is the owner's.
      if (owner !== userId)
        await this.limits.assertRoom(owner, { bytes: Number(content.size), entries: 1 }, tx);
      return this.files.addFile(
        {
          userId: owner,
          parentId: parent,
          name,
          contentId: content.id,
          sha1: content.sha1,
          size: Number(content.size),
          ...(input.mtime === undefined ? {} : { mtime: input.mtime }),
        },
        tx,
      );
    };
    const file = await this.completeWaiting(userId, uploadId, input.sha1, place);
    return { file, created };
  }

  /**
   * `complete`, awaited to its end: a Nextcloud client has no way to ask again later (a 202 would
   * send it polling a job), and the work is usually O(1) — only chunks hashed by an instance that
   * has since restarted are read back.
   */
  private async completeWaiting(
    userId: string,
    uploadId: string,
    sha1: string | undefined,
    place: PlaceFile,
  ) {
    const until = this.now() + OTHER_INSTANCE_WAIT_MS;
    for (;;) {
      try {
        return (await this.uploads.complete(userId, uploadId, sha1, { hashUnknown: true, place })).file;
      } catch (error) {
        if (!(error instanceof HttpError && error.code === 'upload_busy')) throw error;
        const running = this.uploads.running(uploadId);
        if (running) return (await running).file;
        if (this.now() > until) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }
}
