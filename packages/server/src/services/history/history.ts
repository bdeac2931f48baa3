import type { HistoryEvent, HistoryPage, HistoryQuery } from '@dfs/shared';
import { HttpError } from '../../errors.ts';
import type { HistoryEventWithSha1 } from '../../repositories/history.ts';
import type { Repositories } from '../../repositories/index.ts';
import { actorOf, SYSTEM_ACTOR } from '../actor.ts';

const DEFAULT_LIMIT = 100;

/**
 * A user's history: every change to their tree, newest first (FileService records each in the
 * transaction of the change), by folder subtree, time and actor.
 */
export class HistoryService {
  constructor(private readonly repos: Repositories) {}

  async page(userId: string, query: HistoryQuery): Promise<HistoryPage> {
    if (query.folderId !== undefined) {
      const folder = await this.repos.files.find(userId, query.folderId);
      if (folder?.kind !== 'folder') throw new HttpError('not_found', 'no such folder');
    }
    const limit = query.limit ?? DEFAULT_LIMIT;
    const rows = await this.repos.history.page(userId, {
      limit: limit + 1,
      ...(query.folderId !== undefined ? { folderId: query.folderId } : {}),
      ...(query.since !== undefined ? { since: Date.parse(query.since) } : {}),
      ...(query.until !== undefined ? { until: Date.parse(query.until) } : {}),
      ...(query.appPasswordId !== undefined ? { appPasswordId: query.appPasswordId } : {}),
      ...(query.actorType !== undefined ? { actorType: query.actorType } : {}),
      ...(query.cursor !== undefined ? { before: Number(query.cursor) } : {}),
    });
    const items = rows.slice(0, limit).map(toEvent);
    return { items, nextCursor: rows.length > limit ? items.at(-1)!.id : null };
  }
}

function toEvent(row: HistoryEventWithSha1): HistoryEvent {
  const actor = actorOf(row.actor) ?? SYSTEM_ACTOR;
  return {
    id: String(row.seq),
    at: new Date(Number(row.at)).toISOString(),
    action: row.action,
    fileId: row.file_id,
    kind: row.kind,
    path: row.path,
    oldPath: row.old_path,
    sha1: row.sha1,
    oldSha1: row.old_sha1,
    actor,
  };
}
