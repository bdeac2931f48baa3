import type { SessionInfo } from '@dfs/shared';
import { notFound } from '../errors.ts';
import type { Repositories } from '../repositories/index.ts';

const iso = (ms: number) => new Date(Number(ms)).toISOString();

/**
 * The signed-in browsers and devices of a user, as they see and end them. A session ended here
 * is gone from the table, so its next request is unauthenticated whatever it carries.
 */
export class SessionService {
  constructor(
    private readonly repos: Repositories,
    private readonly now: () => number,
  ) {}

  async list(userId: string, currentId: string | null): Promise<SessionInfo[]> {
    const rows = await this.repos.sessions.listLiveByUser(userId, this.now());
    return rows.map((row) => ({
      id: row.id,
      userAgent: row.user_agent ?? null,
      address: row.address ?? null,
      createdAt: iso(row.created_at),
      lastSeenAt: iso(row.last_seen_at),
      current: row.id === currentId,
    }));
  }

  /** Another user's session id answers as an unknown one: ids do not tell whose they are. */
  async revoke(userId: string, id: string): Promise<void> {
    if (!(await this.repos.sessions.deleteOfUser(userId, id))) throw notFound('session not found');
  }

  /** Every session of the user but the asking one; how many ended. */
  async revokeOthers(userId: string, currentId: string | null): Promise<number> {
    if (currentId === null) return 0;
    return this.repos.sessions.deleteByUser(userId, currentId);
  }
}
