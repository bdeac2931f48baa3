import type { AdminUser, Invite } from '@dfs/shared';
import { HttpError, notFound } from '../errors.ts';
import type { Repositories } from '../repositories/index.ts';
import type { InviteRow } from '../repositories/invites.ts';
import type { UsageRow, UserRow } from '../repositories/users.ts';
import { type AuthService, toUser } from './auth.ts';
import type { UserLimits } from './limits.ts';
import type { AuditRecorder } from './operations/audit.ts';

/** Invites last a week unless the admin asks otherwise. */
const DEFAULT_INVITE_HOURS = 168;

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

function toInvite(row: InviteRow): Invite {
  return {
    id: row.id,
    createdAt: iso(row.created_at) as string,
    expiresAt: iso(row.expires_at) as string,
    usedAt: iso(row.used_at),
  };
}

/** Accounts (with their usage and quota) and invites, as administrators see and manage them. */
export class AdminService {
  constructor(
    private readonly repos: Repositories,
    private readonly auth: AuthService,
    private readonly limits: UserLimits,
    private readonly now: () => number,
    private readonly audit?: AuditRecorder,
  ) {}

  /** Every change an administrator makes to an account or invite goes to the audit log. */
  private async recorded(
    action:
      | 'admin.user_created'
      | 'admin.user_updated'
      | 'admin.user_disabled'
      | 'admin.user_enabled'
      | 'admin.password_reset'
      | 'admin.two_factor_reset'
      | 'admin.invite_created'
      | 'admin.invite_deleted',
    target: { type: 'user' | 'invite'; id: string },
    details?: Record<string, unknown>,
  ): Promise<void> {
    await this.audit?.record({ action, target, ...(details ? { details } : {}) });
  }

  async listUsers(limit: number, offset: number): Promise<{ items: AdminUser[]; total: number }> {
    const { items, total } = await this.repos.users.list(limit, offset);
    const usage = await this.repos.users.usage(
      items.map((row) => row.id),
      this.now(),
    );
    const directory = await this.repos.identities.linkedAmong(
      items.map((row) => row.id),
      'ldap',
    );
    return {
      items: items.map((row) => this.toAdminUser(row, usage.get(row.id), directory.has(row.id))),
      total,
    };
  }

  async user(id: string): Promise<AdminUser> {
    const row = await this.repos.users.findById(id);
    if (!row) throw notFound('user not found');
    return this.toAdminUser(
      row,
      (await this.repos.users.usage([id], this.now())).get(id),
      await this.repos.identities.isLinked(id, 'ldap'),
    );
  }

  async createUser(username: string, password: string, isAdmin: boolean): Promise<AdminUser> {
    const user = await this.auth.createUser(username, password, isAdmin);
    await this.recorded(
      'admin.user_created',
      { type: 'user', id: user.id },
      { username: user.username, isAdmin },
    );
    return this.user(user.id);
  }

  async resetPassword(id: string, newPassword: string, askingSessionId: string | null): Promise<void> {
    await this.auth.resetPassword(id, newPassword, askingSessionId);
    await this.recorded('admin.password_reset', { type: 'user', id });
  }

  /**
   * A user who lost their authenticator (and recovery codes) signs in with the password alone
   * again: every second factor of theirs goes, in one transaction, so this is the one place a new
   * kind of second factor is removed too. A user without one is left as they are.
   */
  async resetTwoFactor(id: string): Promise<void> {
    await this.repos.transaction(async (tx) => {
      if (!(await tx.users.findById(id))) throw notFound('user not found');
      await tx.totp.delete(id);
      await tx.passkeys.deleteByUser(id);
    });
    await this.recorded('admin.two_factor_reset', { type: 'user', id });
  }

  /** `null` follows DFS_DEFAULT_QUOTA_BYTES; 0 lifts the quota for this user. */
  async setQuota(id: string, quotaBytes: number | null): Promise<AdminUser> {
    if (!(await this.repos.users.setQuota(id, quotaBytes))) throw notFound('user not found');
    await this.recorded('admin.user_updated', { type: 'user', id }, { quotaBytes });
    return this.user(id);
  }

  async createInvite(
    byUserId: string,
    expiresInHours = DEFAULT_INVITE_HOURS,
  ): Promise<Invite & { code: string }> {
    const { code, row } = await this.auth.createInvite(byUserId, Math.round(expiresInHours * 3_600_000));
    await this.recorded('admin.invite_created', { type: 'invite', id: row.id }, { expiresInHours });
    return { ...toInvite(row), code };
  }

  async listInvites(limit: number, offset: number): Promise<{ items: Invite[]; total: number }> {
    const { items, total } = await this.repos.invites.list(limit, offset);
    return { items: items.map(toInvite), total };
  }

  async deleteInvite(id: string): Promise<void> {
    if (!(await this.repos.invites.delete(id))) throw notFound('invite not found');
    await this.recorded('admin.invite_deleted', { type: 'invite', id });
  }

  /**
   * Turns an account off (or on again). Off, it signs in nowhere: its sessions end at once, and
   * its app passwords authenticate nothing until it is on again. Admins do not turn themselves
   * off (the server could be left with nobody to turn them back on).
   */
  async setDisabled(id: string, disabled: boolean, askingUserId: string): Promise<AdminUser> {
    if (disabled && id === askingUserId) {
      throw new HttpError('bad_request', 'you cannot disable your own account');
    }
    await this.repos.transaction(async (tx) => {
      const row = await tx.users.findById(id);
      if (!row) throw notFound('user not found');
      // Disabling again keeps the first time it was disabled.
      const already = row.disabled_at !== null && row.disabled_at !== undefined;
      if (disabled !== already) await tx.users.setDisabled(id, disabled ? this.now() : null);
      if (disabled) await tx.sessions.deleteByUser(id, null);
    });
    await this.recorded(disabled ? 'admin.user_disabled' : 'admin.user_enabled', { type: 'user', id });
    return this.user(id);
  }

  private toAdminUser(row: UserRow, usage: UsageRow | undefined, directory: boolean): AdminUser {
    return {
      ...toUser(row),
      quotaOverride:
        row.quota_bytes === null || row.quota_bytes === undefined ? null : Number(row.quota_bytes),
      usage: { usedBytes: usage?.bytes ?? 0, quotaBytes: this.limits.quotaOf(row) },
      entries: usage?.entries ?? 0,
      disabledAt: iso(row.disabled_at ?? null),
      directory,
    };
  }
}
