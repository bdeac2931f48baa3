import type { Usage } from '@dfs/shared';
import { HttpError, notFound } from '../errors.ts';
import type { Repositories } from '../repositories/index.ts';
import type { UserRow } from '../repositories/users.ts';

export interface UserLimitsOptions {
  /** DFS_DEFAULT_QUOTA_BYTES; 0 = no quota. */
  defaultQuotaBytes: number;
  maxFilesPerUser: number;
  now: () => number;
}

/** What a request is about to add to a user's holdings. */
export interface Addition {
  bytes: number;
  entries: number;
}

/**
 * Per-user bounds: a byte quota (files live and trashed, plus unfinished uploads' declared
 * sizes) and a number of entries. Callers check inside the transaction that adds, so the check
 * and the insert it allows hold the user's row lock together.
 */
export class UserLimits {
  constructor(
    private readonly repos: Repositories,
    private readonly options: UserLimitsOptions,
  ) {}

  /** The quota that applies to `row`, or null for none (a per-user 0 lifts the default). */
  quotaOf(row: Pick<UserRow, 'quota_bytes'>): number | null {
    const quota = row.quota_bytes ?? this.options.defaultQuotaBytes;
    return Number(quota) > 0 ? Number(quota) : null;
  }

  async usage(userId: string, repos = this.repos): Promise<Usage> {
    const row = await repos.users.findById(userId);
    if (!row) throw notFound('user not found');
    const usage = (await repos.users.usage([userId], this.options.now())).get(userId);
    return { usedBytes: usage?.bytes ?? 0, quotaBytes: this.quotaOf(row) };
  }

  /**
   * Throws `quota_exceeded` (413) or `too_many_files` (409) when `add` would take the user past a
   * bound. Locks the user's row first: call it in the transaction that then inserts.
   */
  async assertRoom(userId: string, add: Addition, repos: Repositories): Promise<void> {
    await this.roomLeft(userId, add, repos);
  }

  /**
   * `assertRoom`, answering the bytes the user may still add beyond `add` (Infinity without a
   * quota), and the error to throw when a body turns out bigger than that.
   */
  async roomLeft(
    userId: string,
    add: Addition,
    repos: Repositories,
  ): Promise<{ bytes: number; exceeded: (bytes: number) => HttpError }> {
    const row = await repos.users.findForUpdate(userId);
    if (!row) throw notFound('user not found');
    const usage = (await repos.users.usage([userId], this.options.now())).get(userId);
    const usedBytes = usage?.bytes ?? 0;
    const entries = (usage?.entries ?? 0) + (usage?.pendingEntries ?? 0);
    const max = this.options.maxFilesPerUser;
    if (add.entries > 0 && entries + add.entries > max) {
      throw new HttpError('too_many_files', `at most ${max} files and folders per user (trash included)`, {
        entries,
        maxEntries: max,
      });
    }
    const quotaBytes = this.quotaOf(row);
    const exceeded = (bytes: number) =>
      new HttpError(
        'quota_exceeded',
        `${bytes} more bytes would exceed the storage quota (${usedBytes} of ${quotaBytes} bytes used; the trash counts until emptied)`,
        { usedBytes, quotaBytes },
      );
    if (quotaBytes !== null && usedBytes + add.bytes > quotaBytes) throw exceeded(add.bytes);
    return {
      bytes: quotaBytes === null ? Number.POSITIVE_INFINITY : quotaBytes - usedBytes - add.bytes,
      exceeded,
    };
  }
}
