import type { Knex } from 'knex';

export type HistoryAction = 'created' | 'replaced' | 'renamed' | 'moved' | 'trashed' | 'restored' | 'purged';

export interface HistoryEventRow {
  seq?: number;
  user_id: string;
  at: number;
  action: HistoryAction;
  file_id: string;
  kind: 'file' | 'folder';
  parent_id: string | null;
  name: string | null;
  path: string | null;
  old_parent_id: string | null;
  old_name: string | null;
  old_path: string | null;
  content_id: string | null;
  old_content_id: string | null;
  ancestors: string;
  actor: string;
  actor_type: string;
  app_password_id: string | null;
}

export type HistoryEventWithSha1 = HistoryEventRow & {
  seq: number;
  sha1: string | null;
  old_sha1: string | null;
};

export interface HistoryFilter {
  /** Events at or below this folder (its id in `ancestors`). */
  folderId?: string;
  since?: number;
  until?: number;
  appPasswordId?: string;
  actorType?: string;
  /** Events before this sequence number (the previous page's last). */
  before?: number;
  limit: number;
}

export class HistoryRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: HistoryEventRow): Promise<void> {
    await this.db('history_events').insert(row);
  }

  /** A page of a user's events, newest first, with the SHA-1s of the contents they name. */
  async page(userId: string, filter: HistoryFilter): Promise<HistoryEventWithSha1[]> {
    const q = this.db('history_events as h')
      .leftJoin('contents as c', 'c.id', 'h.content_id')
      .leftJoin('contents as o', 'o.id', 'h.old_content_id')
      .where('h.user_id', userId)
      .orderBy('h.seq', 'desc')
      .limit(filter.limit)
      .select('h.*', 'c.sha1 as sha1', 'o.sha1 as old_sha1');
    if (filter.before !== undefined) q.andWhere('h.seq', '<', filter.before);
    if (filter.since !== undefined) q.andWhere('h.at', '>=', filter.since);
    if (filter.until !== undefined) q.andWhere('h.at', '<=', filter.until);
    if (filter.appPasswordId !== undefined) q.andWhere('h.app_password_id', filter.appPasswordId);
    if (filter.actorType !== undefined) q.andWhere('h.actor_type', filter.actorType);
    if (filter.folderId !== undefined) q.andWhere('h.ancestors', 'like', `%,${filter.folderId},%`);
    return q;
  }
}
