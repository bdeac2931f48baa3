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

  /** Events in the order given (their `seq`s follow it). */
  async insertMany(rows: HistoryEventRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += 100) await this.db('history_events').insert(rows.slice(i, i + 100));
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

  /**
   * The entries with a change after `after`: all of the user's, or those at or below `folderId`
   * before or after the change (it stays out: a folder's restore leaves the folder itself alone).
   */
  async changedAfter(userId: string, after: number, folderId?: string): Promise<string[]> {
    const q = this.db('history_events')
      .where('user_id', userId)
      .andWhere('at', '>', after)
      .distinct('file_id');
    if (folderId !== undefined)
      q.andWhere('ancestors', 'like', `%,${folderId},%`).andWhereNot('file_id', folderId);
    return (await q).map((r: { file_id: string }) => r.file_id);
  }

  /** Entries that left `parentId` (moved, renamed in it, trashed from it…) after `after`. */
  async leftAfter(userId: string, after: number, parentId: string): Promise<string[]> {
    const rows = await this.db('history_events')
      .where({ user_id: userId, old_parent_id: parentId })
      .andWhere('at', '>', after)
      .distinct('file_id');
    return rows.map((r: { file_id: string }) => r.file_id);
  }

  /** Each entry's first event after `after`: what it tells of before is how the entry was then. */
  async firstAfter(userId: string, after: number, fileIds: string[]): Promise<HistoryEventRow[]> {
    const out: HistoryEventRow[] = [];
    for (let i = 0; i < fileIds.length; i += 500) {
      const firsts = this.db('history_events')
        .where('user_id', userId)
        .andWhere('at', '>', after)
        .whereIn('file_id', fileIds.slice(i, i + 500))
        .groupBy('file_id')
        .min({ seq: 'seq' });
      out.push(
        ...(await this.db('history_events')
          .whereIn('seq', this.db.from(firsts.as('f')).select('f.seq'))
          .select('*')),
      );
    }
    return out;
  }

  /** An actor's changes that count towards a mass change, since `since`, oldest first. */
  async burst(
    userId: string,
    actor: { type: string; json: string },
    since: number,
    actions: HistoryAction[],
    limit: number,
  ): Promise<Array<Pick<HistoryEventRow, 'at' | 'file_id' | 'ancestors'>>> {
    return this.db('history_events')
      .where({ user_id: userId, actor_type: actor.type, actor: actor.json })
      .andWhere('at', '>=', since)
      .whereIn('action', actions)
      .orderBy('seq', 'asc')
      .limit(limit)
      .select('at', 'file_id', 'ancestors');
  }
}
