import { createHmac, timingSafeEqual } from 'node:crypto';
import type { CreateShareBody, PublicShare, Share, ShareGrant } from '@dfs/shared';
import { LRUCache } from 'lru-cache';
import { HttpError, notFound } from '../errors.ts';
import type { ContentRow } from '../repositories/contents.ts';
import type { Repositories } from '../repositories/index.ts';
import type { ShareRowWithFile } from '../repositories/shares.ts';
import type { FileService } from './files.ts';
import { newToken, sha256Hex } from './ids.ts';
import type { PasswordHasher } from './passwords.ts';
import { chargeFor, meterStep } from './share-accounting.ts';

const usedUp = () => new HttpError('share_expired', 'this link has been used up', { reason: 'used_up' });

/** How long a grant URL starts downloads: long enough to click, short enough to leak little. */
export const GRANT_TTL_MS = 10 * 60_000;

/** `<expiry, base 36>.<HMAC-SHA256, base64url without padding>`: exactly what grant() writes. */
const GRANT_FORMAT = /^([0-9a-z]{1,11})\.([A-Za-z0-9_-]{43})$/;

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

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
  ) {}

  /**
   * Passwords already proven right for a link, so the ranges of one download (each carrying the
   * header) cost neither an argon2 verification nor a guess. Wrong ones are never cached.
   */
  private readonly proven = new LRUCache<string, true>({ max: 10_000, ttl: GRANT_TTL_MS });

  toShare(row: ShareRowWithFile, baseUrl: string): Share {
    return {
      token: row.token,
      url: `${baseUrl}/s/${row.token}`,
      fileId: row.file_id,
      name: row.name,
      expiresAt: iso(row.expires_at),
      maxDownloads: row.max_downloads,
      downloads: Number(row.downloads),
      hasPassword: row.password_hash !== null,
      createdAt: iso(row.created_at) as string,
    };
  }

  async create(userId: string, fileId: string, body: CreateShareBody, baseUrl: string): Promise<Share> {
    const file = await this.files.row(userId, fileId, 'active');
    if (file.kind !== 'file') throw new HttpError('bad_request', 'only files can be shared');
    const now = this.now();
    const row = {
      token: newToken(24),
      user_id: userId,
      file_id: file.id,
      password_hash: body.password ? await this.passwords.hash(body.password) : null,
      expires_at: body.expiresInSeconds ? now + body.expiresInSeconds * 1000 : null,
      max_downloads: body.maxDownloads ?? null,
      downloads: 0,
      bytes_served: 0,
      revoked_at: null,
      created_at: now,
    };
    await this.repos.shares.insert(row);
    return this.toShare({ ...row, name: file.name }, baseUrl);
  }

  async list(userId: string, baseUrl: string): Promise<Share[]> {
    return (await this.repos.shares.listByUser(userId)).map((row) => this.toShare(row, baseUrl));
  }

  async revoke(userId: string, token: string): Promise<void> {
    if (!(await this.repos.shares.revoke(userId, token, this.now()))) throw notFound('share not found');
  }

  /**
   * The link's state: 404 unknown or revoked (or its file gone), 410 expired. The error's `reason`
   * tells the visitor's page which, so a dead link says what happened to it.
   */
  private async usable(
    token: string,
    repos = this.repos,
  ): Promise<{ share: ShareRowWithFile; file: SharedFile & { size: number } }> {
    const share = await repos.shares.find(token);
    if (!share) {
      const revoked = (await repos.shares.findIncludingRevoked(token)) !== undefined;
      throw revoked
        ? new HttpError('not_found', 'this link was turned off by its owner', { reason: 'revoked' })
        : new HttpError('not_found', 'share link not found', { reason: 'unknown' });
    }
    const file = await repos.files.find(share.user_id, share.file_id, 'active');
    const content = file?.content_id ? await repos.contents.findById(file.content_id) : undefined;
    if (!file || !content) {
      throw new HttpError('not_found', 'the shared file is no longer available', { reason: 'file_gone' });
    }
    if (share.expires_at !== null && Number(share.expires_at) <= this.now()) {
      throw new HttpError('share_expired', 'this link has expired', { reason: 'expired' });
    }
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
  async info(token: string, reads = this.repos): Promise<PublicShare> {
    const { share, file } = await this.usable(token, reads).catch((error: unknown) => {
      if (reads !== this.repos && error instanceof HttpError && error.code === 'not_found') {
        return this.usable(token);
      }
      throw error;
    });
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
