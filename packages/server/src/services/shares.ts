import { createHmac, timingSafeEqual } from 'node:crypto';
import { Readable } from 'node:stream';
import type {
  CreateShareBody,
  DroppedFile,
  PublicLink,
  PublicShare,
  PublicUploadRequest,
  Share,
  ShareGrant,
  UploadSession,
} from '@dfs/shared';
import { LRUCache } from 'lru-cache';
import { HttpError, notFound } from '../errors.ts';
import type { ContentRow } from '../repositories/contents.ts';
import type { Repositories } from '../repositories/index.ts';
import type { ShareRowWithFile } from '../repositories/shares.ts';
import type { UploadRow } from '../repositories/uploads.ts';
import { type Actor, actingAs } from './actor.ts';
import { bodyPieces } from './body-memory.ts';
import type { FileService } from './files.ts';
import { newToken, sha256Hex } from './ids.ts';
import type { PasswordHasher } from './passwords.ts';
import { chargeFor, meterStep } from './share-accounting.ts';
import type { UploadService } from './uploads.ts';

const usedUp = () => new HttpError('share_expired', 'this link has been used up', { reason: 'used_up' });

/** How long a grant URL starts downloads: long enough to click, short enough to leak little. */
export const GRANT_TTL_MS = 10 * 60_000;

/** `<expiry, base 36>.<HMAC-SHA256, base64url without padding>`: exactly what grant() writes. */
const GRANT_FORMAT = /^([0-9a-z]{1,11})\.([A-Za-z0-9_-]{43})$/;

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

const unknownLink = () => new HttpError('not_found', 'share link not found', { reason: 'unknown' });
const expired = () => new HttpError('share_expired', 'this link has expired', { reason: 'expired' });
const limitReached = (left: number) =>
  new HttpError('payload_too_large', 'this upload link takes no more bytes than its owner allowed', {
    reason: 'limit_reached',
    bytesLeft: Math.max(0, left),
  });

/** How an upload request's history names an uploader who typed no name. */
export const ANONYMOUS_UPLOADER = 'anonymous';
/** Longest uploader name kept, in characters. */
export const UPLOADER_NAME_MAX = 100;

/**
 * The name an uploader typed, as history keeps it: trimmed, `anonymous` when empty. Control
 * characters or an overlong name are refused rather than cut, so what the owner reads is what
 * was typed.
 */
export function uploaderName(typed: string | undefined): string {
  const name = (typed ?? '').trim();
  if (name === '') return ANONYMOUS_UPLOADER;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if ([...name].length > UPLOADER_NAME_MAX || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new HttpError(
      'bad_request',
      `the "name" field must be at most ${UPLOADER_NAME_MAX} characters, without control characters`,
    );
  }
  return name;
}

/** What a resumable upload through a link says at its start. */
export interface DropUploadStart {
  name: string;
  size: number;
  sha1?: string;
  mtime?: string;
  /** The name the uploader typed. */
  uploader?: string;
}

/** What an upload through a link reads of its request. */
export interface DropRequest {
  /** The file's name in the form. */
  name: string;
  body: Readable;
  /** The request's Content-Length (an upper bound of the file's size), when it has one. */
  requestBytes: number | null;
  /** Resolves once the whole request is read: a form field after the file is then known. */
  bodyRead: () => Promise<void>;
  /** The name the uploader typed (the form's `name` field), once known. */
  uploader: () => string | undefined;
}

export interface SharedFile {
  name: string;
  mime: string | null;
  content: ContentRow;
  createdAt: number;
}

/** Takes one password guess from the caller's budget; throws `rate_limited` when it is spent. */
export type GuessGate = () => Promise<void>;

/**
 * How the bytes of one response are counted against the link: reserved as they go out (a step at
 * a time), what a cut-off transfer did not send given back after.
 */
export interface ShareMeter {
  /**
   * Reserves `length` bytes; throws `share_expired` when they would exceed the link's copies. With
   * `whole`, also refuses unless the response's `whole` bytes could all be delivered (checked,
   * not reserved): a request the link cannot finish gets its 410 before any byte.
   */
  reserve(length: number, whole?: number): Promise<void>;
  /** Bytes to reserve at a time while streaming (see meterStep). */
  step: number;
  /** Gives back what a cut-off transfer reserved and did not send. */
  release(unsent: number): Promise<void>;
  /**
   * Whether the link has a download limit. Only then must the app see every byte go out: a
   * redirect to the storage backend could not give back what a cut-off transfer did not use.
   */
  limited: boolean;
}

/** Share links. Every use re-checks the link and that its file is still live (Cloudreve #1414). */
export class ShareService {
  constructor(
    private readonly repos: Repositories,
    private readonly files: FileService,
    private readonly passwords: PasswordHasher,
    private readonly secret: string,
    private readonly now: () => number,
    private readonly uploads: UploadService,
  ) {}

  /**
   * Passwords already proven right for a link, so the ranges of one download (each carrying the
   * header) cost neither an argon2 verification nor a guess. Wrong ones are never cached.
   */
  private readonly proven = new LRUCache<string, true>({ max: 10_000, ttl: GRANT_TTL_MS });

  toShare(row: ShareRowWithFile, baseUrl: string): Share {
    const kind = row.kind;
    return {
      token: row.token,
      kind,
      // An upload request opens its own page: the drop page, which shows nothing of the folder.
      url: `${baseUrl}/${kind === 'upload' ? 'drop' : 's'}/${row.token}`,
      fileId: row.file_id,
      name: row.name,
      expiresAt: iso(row.expires_at),
      maxDownloads: row.max_downloads,
      downloads: Number(row.downloads),
      hasPassword: row.password_hash !== null,
      maxBytes: row.max_bytes === null ? null : Number(row.max_bytes),
      bytesReceived: Number(row.bytes_received),
      createdAt: iso(row.created_at) as string,
    };
  }

  async create(userId: string, fileId: string, body: CreateShareBody, baseUrl: string): Promise<Share> {
    const kind = body.kind ?? 'download';
    const file = await this.files.row(userId, fileId, 'active');
    if (kind === 'download') {
      if (file.kind !== 'file') {
        throw new HttpError(
          'bad_request',
          'only files can be shared by a download link; a folder takes an upload request (kind "upload")',
        );
      }
      if (body.maxBytes !== undefined) {
        throw new HttpError('bad_request', '"maxBytes" is for upload requests (kind "upload")');
      }
    } else {
      if (file.kind !== 'folder') throw new HttpError('bad_request', 'upload requests are made on folders');
      if (body.maxDownloads !== undefined) {
        throw new HttpError(
          'bad_request',
          'an upload request serves no downloads: "maxDownloads" is for download links',
        );
      }
    }
    const now = this.now();
    let expiresAt: number | null = body.expiresInSeconds ? now + body.expiresInSeconds * 1000 : null;
    if (body.expiresAt !== undefined) {
      if (body.expiresInSeconds !== undefined) {
        throw new HttpError('bad_request', 'give "expiresAt" or "expiresInSeconds", not both');
      }
      expiresAt = Date.parse(body.expiresAt);
      if (!Number.isFinite(expiresAt) || expiresAt <= now) {
        throw new HttpError('bad_request', '"expiresAt" must be a time in the future');
      }
    }
    const row = {
      token: newToken(24),
      kind,
      user_id: userId,
      file_id: file.id,
      password_hash: body.password ? await this.passwords.hash(body.password) : null,
      expires_at: expiresAt,
      max_downloads: body.maxDownloads ?? null,
      downloads: 0,
      bytes_served: 0,
      revoked_at: null,
      created_at: now,
      max_bytes: body.maxBytes ?? null,
      bytes_received: 0,
    };
    await this.repos.shares.insert(row);
    return this.toShare({ ...row, name: file.name }, baseUrl);
  }

  async list(userId: string, baseUrl: string): Promise<Share[]> {
    return (await this.repos.shares.listByUser(userId)).map((row) => this.toShare(row, baseUrl));
  }

  async revoke(userId: string, token: string): Promise<void> {
    if (!(await this.repos.shares.revoke(userId, token, this.now()))) throw notFound('share not found');
    // An upload request's unfinished sessions can never complete now: their bytes and the room
    // they hold in the owner's quota go at once rather than when they expire. A complete already
    // running finds the link revoked; anything failing here is left to expiry.
    for (const upload of await this.repos.uploads.openForShare(token, this.now())) {
      await this.uploads.abort(upload.user_id, upload.id, token).catch(() => undefined);
    }
  }

  /**
   * The link's state: 404 unknown or revoked (or its file gone), 410 expired. The error's `reason`
   * tells the visitor's page which, so a dead link says what happened to it.
   */
  private async live(token: string, repos = this.repos): Promise<ShareRowWithFile> {
    const share = await repos.shares.find(token);
    if (!share) {
      const revoked = (await repos.shares.findIncludingRevoked(token)) !== undefined;
      throw revoked
        ? new HttpError('not_found', 'this link was turned off by its owner', { reason: 'revoked' })
        : unknownLink();
    }
    return share;
  }

  /** A download link's state (an upload request never serves bytes: 404 as if unknown). */
  private async usable(
    token: string,
    repos = this.repos,
  ): Promise<{ share: ShareRowWithFile; file: SharedFile & { size: number } }> {
    const share = await this.live(token, repos);
    if (share.kind !== 'download') throw unknownLink();
    const file = await repos.files.find(share.user_id, share.file_id, 'active');
    const content = file?.content_id ? await repos.contents.findById(file.content_id) : undefined;
    if (!file || !content) {
      throw new HttpError('not_found', 'the shared file is no longer available', { reason: 'file_gone' });
    }
    if (share.expires_at !== null && Number(share.expires_at) <= this.now()) throw expired();
    return {
      share,
      file: {
        name: file.name,
        mime: file.mime,
        content,
        size: Number(content.size),
        createdAt: Number(file.created_at),
      },
    };
  }

  /** Every whole copy the link allows has been given out. */
  private usedUp(share: ShareRowWithFile): boolean {
    return share.max_downloads !== null && Number(share.downloads) >= share.max_downloads;
  }

  /** `reads`: a read replica's repositories may answer; a link it does not know yet is looked up on the primary. */
  async info(token: string, reads = this.repos): Promise<PublicLink> {
    const retryOnPrimary = <T>(error: unknown, again: () => Promise<T>): Promise<T> => {
      if (reads !== this.repos && error instanceof HttpError && error.code === 'not_found') return again();
      throw error;
    };
    const link = await this.live(token, reads).catch((error: unknown) =>
      retryOnPrimary(error, () => this.live(token)),
    );
    if (link.kind === 'upload') {
      return this.uploadInfo(token, reads).catch((error: unknown) =>
        retryOnPrimary(error, () => this.uploadInfo(token)),
      );
    }
    return this.downloadInfo(token, reads).catch((error: unknown) =>
      retryOnPrimary(error, () => this.downloadInfo(token)),
    );
  }

  private async downloadInfo(token: string, reads = this.repos): Promise<PublicShare> {
    const { share, file } = await this.usable(token, reads);
    if (this.usedUp(share)) throw usedUp();
    return {
      name: file.name,
      size: file.size,
      expiresAt: iso(share.expires_at),
      hasPassword: share.password_hash !== null,
    };
  }

  private async checkPassword(share: ShareRowWithFile, password: string | undefined, guess: GuessGate) {
    if (share.password_hash === null) return;
    if (!password) throw new HttpError('share_password_required', 'this link needs a password');
    const key = sha256Hex(`${share.token}\0${share.password_hash}\0${password}`);
    if (this.proven.has(key)) return;
    await guess();
    if (!(await this.passwords.verify(share.password_hash, password))) {
      throw new HttpError('share_password_invalid', 'wrong password for this link');
    }
    this.proven.set(key, true);
  }

  /**
   * An upload request's state: 404 unknown, revoked or its folder gone (trashed), 410 expired.
   * The folder's content is never looked at here: the link does not reveal it.
   */
  private async usableUpload(token: string, repos = this.repos): Promise<ShareRowWithFile> {
    const share = await this.live(token, repos);
    if (share.kind !== 'upload') throw unknownLink();
    const folder = await repos.files.find(share.user_id, share.file_id, 'active');
    if (!folder) {
      throw new HttpError('not_found', 'the folder of this link is no longer available', {
        reason: 'folder_gone',
      });
    }
    if (share.expires_at !== null && Number(share.expires_at) <= this.now()) throw expired();
    return share;
  }

  /** What the link still takes: its limit less what it received and what open sessions hold. */
  private bytesLeft(share: ShareRowWithFile, held = 0): number | null {
    return share.max_bytes === null
      ? null
      : Math.max(0, Number(share.max_bytes) - Number(share.bytes_received) - held);
  }

  private async uploadInfo(token: string, reads = this.repos): Promise<PublicUploadRequest> {
    const share = await this.usableUpload(token, reads);
    const held = share.max_bytes === null ? 0 : await reads.uploads.reservedForShare(token, this.now());
    return {
      kind: 'upload',
      name: share.name,
      expiresAt: iso(share.expires_at),
      hasPassword: share.password_hash !== null,
      maxBytes: share.max_bytes === null ? null : Number(share.max_bytes),
      bytesLeft: this.bytesLeft(share, held),
    };
  }

  /**
   * Counts `bytes` received by the link when they fit beside what it received and what its open
   * sessions hold (`exceptId`: the session these bytes complete, whose own hold they replace).
   * In one transaction whose first statement locks the link's sessions, so a session opening
   * meanwhile waits and the sum stays true. False when the link is gone or the bytes do not fit.
   */
  private async takeBytes(
    tx: Repositories,
    token: string,
    bytes: number,
    exceptId?: string,
  ): Promise<boolean> {
    const now = this.now();
    const held = await tx.uploads.reservedForShare(token, now, { except: exceptId, lock: true });
    return tx.shares.receiveBytes(token, bytes, now, bytes + held);
  }

  /**
   * Takes one file into an upload request's folder, as its owner's (their quota, their tree) and
   * told in history as the uploader's, by the name they typed. A taken name gets the usual
   * ` (n)`; nothing is ever replaced. The link's byte limit and expiry stop the body while it
   * streams; the bytes are counted against the limit in one conditional update before the file
   * is added, so racing uploads cannot overshoot it, and given back if adding it fails.
   */
  async receive(
    token: string,
    password: string | undefined,
    guess: GuessGate,
    drop: DropRequest,
  ): Promise<DroppedFile> {
    const share = await this.usableUpload(token);
    await this.checkPassword(share, password, guess);
    // A name typed before the file is checked before any byte is stored.
    uploaderName(drop.uploader());
    const held = share.max_bytes === null ? 0 : await this.repos.uploads.reservedForShare(token, this.now());
    const left = this.bytesLeft(share, held) ?? Number.POSITIVE_INFINITY;
    if (left <= 0) throw limitReached(0);
    const expiresAt = share.expires_at === null ? null : Number(share.expires_at);
    let seen = 0;
    const now = this.now;
    async function* limited(body: Readable): AsyncGenerator<Buffer> {
      for await (const piece of bodyPieces(body, 0)) {
        seen += piece.length;
        if (seen > left) throw limitReached(left);
        if (expiresAt !== null && expiresAt <= now()) throw expired();
        yield piece;
      }
    }
    const actor: Actor = { type: 'share', name: ANONYMOUS_UPLOADER, via: 'api' };
    let counted = 0;
    try {
      const file = await actingAs(actor, () =>
        this.uploads.uploadSingle(
          share.user_id,
          share.file_id,
          drop.name,
          Readable.from(limited(drop.body), { objectMode: false }),
          undefined,
          drop.requestBytes,
          // Runs once the body is stored and before the file is added: the uploader's name (a
          // field may follow the file) and the link's count are settled there, so a refusal
          // adds nothing (the stored bytes, referenced by no file, are collected).
          async () => {
            await drop.bodyRead();
            actor.name = uploaderName(drop.uploader());
            if (!(await this.repos.transaction((tx) => this.takeBytes(tx, token, seen)))) {
              throw await this.refusal(token);
            }
            counted = seen;
            return share.file_id;
          },
          undefined,
          () => 'rename',
        ),
      );
      return { name: file.name, size: file.size };
    } catch (error) {
      if (counted > 0) await this.repos.shares.unreceiveBytes(token, counted);
      throw error;
    }
  }

  /**
   * Why a link refused bytes it looked ready to take a moment ago. `repos`: inside a transaction,
   * its own (SQLite's one connection is held by it).
   */
  private async refusal(token: string, repos = this.repos): Promise<HttpError> {
    const share = await this.usableUpload(token, repos).catch((error: unknown) => error);
    if (share instanceof HttpError) return share;
    const held = await repos.uploads.reservedForShare(token, this.now());
    return limitReached(this.bytesLeft(share as ShareRowWithFile, held) ?? 0);
  }

  // ---- resumable uploads through the link (the chunked upload sessions, opened for the owner) ----

  /**
   * Opens a chunked upload session into the link's folder, as its owner's, tagged with the link
   * (only it may touch the session) and the uploader's name. The declared size is held against
   * the link's byte limit from now until the session completes, is aborted or expires, so
   * parallel sessions cannot together pass it. Known content is never answered as such: the
   * bytes are always sent.
   */
  async openUpload(
    token: string,
    password: string | undefined,
    guess: GuessGate,
    start: DropUploadStart,
  ): Promise<UploadSession> {
    const share = await this.usableUpload(token);
    await this.checkPassword(share, password, guess);
    const uploader = uploaderName(start.uploader);
    const left = this.bytesLeft(share) ?? Number.POSITIVE_INFINITY;
    if (start.size > left) throw limitReached(left);
    const result = await this.uploads.create(
      share.user_id,
      {
        name: start.name,
        size: start.size,
        parentId: share.file_id,
        onConflict: 'rename',
        ...(start.sha1 === undefined ? {} : { sha1: start.sha1.toLowerCase() }),
        ...(start.mtime === undefined ? {} : { mtime: start.mtime }),
      },
      {
        shareToken: token,
        uploader,
        reserve: async (tx) => {
          // Counts nothing yet, but the whole declared size must fit beside what is held.
          const now = this.now();
          const held = await tx.uploads.reservedForShare(token, now, { lock: true });
          if (!(await tx.shares.receiveBytes(token, 0, now, held + start.size))) {
            throw await this.refusal(token, tx);
          }
        },
      },
    );
    if (result.status !== 'created') throw new Error(`a link's upload was answered "${result.status}"`);
    const { status: _status, ...session } = result;
    return session;
  }

  /** The link's state and password, then the session — 404 unless this link opened it. */
  private async linkSession(
    token: string,
    password: string | undefined,
    guess: GuessGate,
    uploadId: string,
  ): Promise<{ share: ShareRowWithFile; upload: UploadRow }> {
    const share = await this.usableUpload(token);
    await this.checkPassword(share, password, guess);
    const upload = await this.repos.uploads.findForShare(token, uploadId);
    if (!upload || upload.user_id !== share.user_id) throw notFound('upload not found');
    return { share, upload };
  }

  /** What the server holds of a link's session: the chunks still to send, to resume. */
  async uploadState(
    token: string,
    password: string | undefined,
    guess: GuessGate,
    uploadId: string,
  ): Promise<UploadSession> {
    const { share } = await this.linkSession(token, password, guess, uploadId);
    return this.uploads.get(share.user_id, uploadId, token);
  }

  /** Checks a chunk request through the link before any byte is read (UploadService.prepareChunk). */
  async prepareChunk(
    token: string,
    password: string | undefined,
    guess: GuessGate,
    uploadId: string,
    index: number,
    contentLength: number | null,
  ): Promise<{ upload: UploadRow; expected: number }> {
    const { share } = await this.linkSession(token, password, guess, uploadId);
    return this.uploads.prepareChunk(share.user_id, uploadId, index, contentLength, token);
  }

  /**
   * Verifies and publishes a link's upload: the file joins the link's folder (a taken name gets
   * ` (n)`), told in history as the uploader's. The link's count takes the bytes in the
   * transaction that adds the file, re-checking the link there: revoked or expired meanwhile,
   * nothing is added (the session stays, to be aborted).
   */
  async completeUpload(
    token: string,
    password: string | undefined,
    guess: GuessGate,
    uploadId: string,
    sha1: string | undefined,
  ): Promise<DroppedFile> {
    const { share, upload } = await this.linkSession(token, password, guess, uploadId);
    const actor: Actor = { type: 'share', name: upload.uploader ?? ANONYMOUS_UPLOADER, via: 'api' };
    const size = Number(upload.size);
    const result = await actingAs(actor, () =>
      this.uploads.complete(share.user_id, uploadId, sha1, {
        link: token,
        // A browser need not hash the file first: the server's own digest names the content.
        hashUnknown: true,
        place: async (tx, content) => {
          if (!(await this.takeBytes(tx, token, size, upload.id))) throw await this.refusal(token, tx);
          const parentId = await this.files.resolveParent(share.user_id, upload.parent_id, tx);
          return this.files.placeFile(
            {
              userId: share.user_id,
              parentId,
              name: upload.name,
              contentId: content.id,
              sha1: content.sha1,
              size: Number(content.size),
              ...(upload.mtime == null ? {} : { mtime: Number(upload.mtime) }),
            },
            'rename',
            tx,
          );
        },
      }),
    );
    return { name: result.file.name, size: result.file.size };
  }

  /** Drops a link's unfinished session and its bytes; what it held of the limit is free again. */
  async abortUpload(
    token: string,
    password: string | undefined,
    guess: GuessGate,
    uploadId: string,
  ): Promise<void> {
    const { share } = await this.linkSession(token, password, guess, uploadId);
    await this.uploads.abort(share.user_id, uploadId, token);
  }

  private grantMac(token: string, expiresAt: number): Buffer {
    return createHmac('sha256', this.secret).update(`share-grant\0${token}\0${expiresAt}`).digest();
  }

  /**
   * A short-lived URL that downloads the link's file without the password header, so a browser
   * can navigate to it and stream to disk. Stateless (an HMAC over link and expiry under the
   * server secret), so any app instance honours it; the link itself is re-checked on every use.
   */
  async grant(
    token: string,
    password: string | undefined,
    guess: GuessGate,
    base: string,
  ): Promise<ShareGrant> {
    const { share } = await this.usable(token);
    if (this.usedUp(share)) throw usedUp();
    await this.checkPassword(share, password, guess);
    const expiresAt = this.now() + GRANT_TTL_MS;
    const grant = `${expiresAt.toString(36)}.${this.grantMac(token, expiresAt).toString('base64url')}`;
    return {
      url: `${base}/api/public/shares/${encodeURIComponent(token)}/content?grant=${grant}`,
      expiresAt: new Date(expiresAt).toISOString(),
    };
  }

  private checkGrant(token: string, grant: string): void {
    // Only the exact form grant() writes is read: parseInt and base64url decoding both skip what
    // they do not understand (padding, a third part, trailing junk), so a URL carrying extra
    // bytes would otherwise pass for the one the server handed out.
    const match = GRANT_FORMAT.exec(grant);
    const expiresAt = match ? Number.parseInt(match[1] as string, 36) : Number.NaN;
    const mac = match ? Buffer.from(match[2] as string, 'base64url') : Buffer.alloc(0);
    const canonical =
      match !== null &&
      Number.isSafeInteger(expiresAt) &&
      expiresAt.toString(36) === match[1] &&
      mac.toString('base64url') === match[2];
    const expected = canonical ? this.grantMac(token, expiresAt) : null;
    if (!expected || mac.length !== expected.length || !timingSafeEqual(mac, expected)) {
      throw new HttpError('forbidden', 'this download URL is not valid for this link');
    }
    if (expiresAt <= this.now()) {
      throw new HttpError('gone', 'this download URL has expired; open the link again');
    }
  }

  /**
   * Checks the link and either a grant from `grant()` or the password, and returns the file with
   * the meter that counts what is sent (see share-accounting.ts).
   */
  async open(
    token: string,
    credentials: { password?: string; grant?: string },
    guess: GuessGate,
  ): Promise<{ file: SharedFile; meter: ShareMeter }> {
    const { share, file } = await this.usable(token);
    if (credentials.grant !== undefined) this.checkGrant(token, credentials.grant);
    else await this.checkPassword(share, credentials.password, guess);
    return {
      file,
      meter: {
        reserve: async (length, whole) => {
          const ok = await this.repos.shares.reserveBytes(token, this.now(), (row) =>
            whole === undefined || chargeFor(row, whole, file.size)
              ? chargeFor(row, length, file.size)
              : null,
          );
          if (!ok) throw usedUp();
        },
        step: meterStep(file.size),
        release: (unsent) => this.repos.shares.releaseBytes(token, unsent),
        limited: share.max_downloads !== null,
      },
    };
  }
}
