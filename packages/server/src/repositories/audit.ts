import type { Knex } from 'knex';

export interface AuditEventRow {
  id?: number | string;
  at: number;
  actor_id: string | null;
  actor_username: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  address: string | null;
  user_agent: string | null;
  /** JSON; null when the event has none. */
  details: string | null;
}

export interface AuditFilter {
  actorUsername?: string;
  action?: string;
  /** Inclusive bounds on `at`. */
  from?: number;
  to?: number;
  /** Events older than this (at, id) pair: the previous page's last. */
  before?: { at: number; id: number };
  limit: number;
}

export class AuditRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: AuditEventRow): Promise<void> {
    await this.db('audit_events').insert(row);
  }

  /** Newest first, by (at, id): keyset pagination that the (filter, at) indexes can walk. */
  async page(filter: AuditFilter): Promise<AuditEventRow[]> {
    const q = this.db('audit_events')
      .orderBy([
        { column: 'at', order: 'desc' },
        { column: 'id', order: 'desc' },
      ])
      .limit(filter.limit)
      .select('*');
    if (filter.actorUsername !== undefined) q.where('actor_username', filter.actorUsername);
    if (filter.action !== undefined) q.where('action', filter.action);
    if (filter.from !== undefined) q.where('at', '>=', filter.from);
    if (filter.to !== undefined) q.where('at', '<=', filter.to);
    const before = filter.before;
    if (before) {
      q.where((w) =>
        w
          .where('at', '<', before.at)
          .orWhere((same) => same.where('at', before.at).andWhere('id', '<', before.id)),
      );
    }
    return q;
  }

  /** Deletes up to `limit` events older than `before`; how many went. */
  async deleteOlderThan(before: number, limit: number): Promise<number> {
    const ids = (await this.db('audit_events')
      .where('at', '<', before)
      .orderBy('at')
      .limit(limit)
      .pluck('id')) as (number | string)[];
    if (ids.length === 0) return 0;
    return this.db('audit_events').whereIn('id', ids).delete();
  }
}
