import type { CreateShareBody, PublicShare, Share } from '@dfs/shared';
import { HttpError, notFound } from '../errors.ts';
import type { ContentRow } from '../repositories/contents.ts';
import type { Repositories } from '../repositories/index.ts';
import type { ShareRowWithFile } from '../repositories/shares.ts';
import type { FileService } from './files.ts';
import { newToken } from './ids.ts';
import type { PasswordHasher } from './passwords.ts';

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

export interface SharedFile {
  name: string;
  mime: string | null;
  content: ContentRow;
}

/** Share links. Every use re-checks the link and that its file is still live (Cloudreve #1414). */
export class ShareService {
  constructor(
    private readonly repos: Repositories,
    private readonly files: FileService,
    private readonly passwords: PasswordHasher,
    private readonly now: () => number,
  ) {}

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

  /** The link's state: 404 unknown or revoked (or its file gone), 410 expired or used up. */
  private async usable(
    token: string,
  ): Promise<{ share: ShareRowWithFile; file: SharedFile & { size: number } }> {
    const share = await this.repos.shares.find(token);
    if (!share) throw notFound('share link not found');
    const file = await this.repos.files.find(share.user_id, share.file_id, 'active');
    const content = file?.content_id ? await this.repos.contents.findById(file.content_id) : undefined;
    if (!file || !content) throw notFound('the shared file is no longer available');
    if (share.expires_at !== null && Number(share.expires_at) <= this.now()) {
      throw new HttpError('share_expired', 'this link has expired');
    }
    if (share.max_downloads !== null && Number(share.downloads) >= share.max_downloads) {
      throw new HttpError('share_expired', 'this link has been used up');
    }
    return { share, file: { name: file.name, mime: file.mime, content, size: Number(content.size) } };
  }

  async info(token: string): Promise<PublicShare> {
    const { share, file } = await this.usable(token);
    return {
      name: file.name,
      size: file.size,
      expiresAt: iso(share.expires_at),
      hasPassword: share.password_hash !== null,
    };
  }

  /** Checks link and password; `claim` counts the download atomically when the body is sent. */
  async open(
    token: string,
    password: string | undefined,
  ): Promise<{ file: SharedFile; claim: () => Promise<void> }> {
    const { share, file } = await this.usable(token);
    if (share.password_hash !== null) {
      if (!password) throw new HttpError('share_password_required', 'this link needs a password');
      if (!(await this.passwords.verify(share.password_hash, password))) {
        throw new HttpError('share_password_invalid', 'wrong password for this link');
      }
    }
    return {
      file,
      claim: async () => {
        if (!(await this.repos.shares.claimDownload(token, this.now()))) {
          throw new HttpError('share_expired', 'this link has been used up');
        }
      },
    };
  }
}
