import type { Knex } from 'knex';

export interface StatsPoint {
  metric: string;
  bucket: number;
  value: number;
}

/** What the gauges are read from: whole-table aggregates, taken by the sampler a few times an hour. */
export interface StatsTotals {
  /** Sizes of every user's entries (live and trashed) and kept versions: what they would take without dedupe. */
  logicalBytes: number;
  /** Sizes of the distinct contents still referenced: what dfs stores, once per replica. */
  uniqueBytes: number;
}

export interface ReplicaTotals {
  nodeId: string;
  state: string;
  count: number;
  bytes: number;
}

/** The dashboard's time series (`stats_series`, migration 039). */
export class StatsRepository {
  constructor(private readonly db: Knex) {}

  /**
   * Adds counter deltas to their hours. Each instance adds only what it counted itself, so the
   * row ends up with the sum over instances; one statement per row keeps the addition atomic.
   */
  async add(points: StatsPoint[]): Promise<void> {
    if (points.length === 0) return;
    const mysql = this.db.client.config.client === 'mysql2';
    const sql = mysql
      ? 'INSERT INTO stats_series (metric, bucket, value) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE value = value + VALUES(value)'
      : 'INSERT INTO stats_series (metric, bucket, value) VALUES (?, ?, ?) ON CONFLICT (metric, bucket) DO UPDATE SET value = value + excluded.value';
    await this.db.transaction(async (trx) => {
      for (const p of points) await trx.raw(sql, [p.metric, p.bucket, p.value]);
    });
  }

  /** Sets gauges: the hour keeps the latest value. */
  async set(points: StatsPoint[]): Promise<void> {
    if (points.length === 0) return;
    await this.db('stats_series').insert(points).onConflict(['metric', 'bucket']).merge(['value']);
  }

  /** Every point from `from` (inclusive) on, oldest first. */
  async since(from: number): Promise<StatsPoint[]> {
    const rows = await this.db('stats_series')
      .where('bucket', '>=', from)
      .orderBy('bucket')
      .select<StatsPoint[]>('metric', 'bucket', 'value');
    return rows.map((r) => ({ metric: r.metric, bucket: Number(r.bucket), value: Number(r.value) }));
  }

  /** The latest point of each of `metrics` (in any hour), for the snapshot. */
  async latest(metrics: string[]): Promise<Map<string, StatsPoint>> {
    const out = new Map<string, StatsPoint>();
    if (metrics.length === 0) return out;
    const newest = this.db('stats_series')
      .whereIn('metric', metrics)
      .groupBy('metric')
      .select('metric', this.db.raw('max(bucket) as bucket'));
    const rows = await this.db('stats_series as s')
      .join(newest.as('n'), (j) => j.on('s.metric', 'n.metric').andOn('s.bucket', 'n.bucket'))
      .select<StatsPoint[]>('s.metric as metric', 's.bucket as bucket', 's.value as value');
    for (const r of rows)
      out.set(r.metric, { metric: r.metric, bucket: Number(r.bucket), value: Number(r.value) });
    return out;
  }

  /**
   * Replica counts and bytes by node and state over the next `limit` replicas (by content id)
   * after `after`; `next` is where the following slice starts (null after the last). The sampler
   * reads the whole table this way, a slice per query, so on a large installation no single
   * statement holds the database (SQLite has one connection) for seconds.
   */
  async replicaSlice(after: string, limit: number): Promise<{ rows: ReplicaTotals[]; next: string | null }> {
    const bound = await this.db('replicas')
      .where('content_id', '>', after)
      .orderBy('content_id')
      .offset(limit - 1)
      .first<{ content_id: string } | undefined>('content_id');
    const query = this.db('replicas as r')
      .join('contents as c', 'c.id', 'r.content_id')
      .where('r.content_id', '>', after);
    if (bound) query.andWhere('r.content_id', '<=', bound.content_id);
    const rows = await query
      .groupBy('r.node_id', 'r.state')
      .select<Array<{ node_id: string; state: string; n: number | string; bytes: number | string | null }>>(
        'r.node_id as node_id',
        'r.state as state',
        this.db.raw('count(*) as n'),
        this.db.raw('sum(c.size) as bytes'),
      );
    return {
      rows: rows.map((r) => ({
        nodeId: r.node_id,
        state: r.state,
        count: Number(r.n),
        bytes: Number(r.bytes ?? 0),
      })),
      next: bound ? bound.content_id : null,
    };
  }

  /**
   * Replicas by state over the whole table, and the bytes of the good ones by node, read a
   * `sliceSize` slice at a time (see `replicaSlice`): what the dashboard's gauges and `/metrics`'
   * `dfs_replicas` both report.
   */
  async replicaTotals(sliceSize: number): Promise<{
    byState: { ok: number; missing: number; corrupt: number };
    okBytesByNode: Map<string, number>;
  }> {
    const byState = { ok: 0, missing: 0, corrupt: 0 };
    const okBytesByNode = new Map<string, number>();
    for (let after: string | null = ''; after !== null; ) {
      const slice = await this.replicaSlice(after, sliceSize);
      for (const row of slice.rows) {
        if (row.state === 'ok' || row.state === 'missing' || row.state === 'corrupt')
          byState[row.state] += row.count;
        if (row.state === 'ok')
          okBytesByNode.set(row.nodeId, (okBytesByNode.get(row.nodeId) ?? 0) + row.bytes);
      }
      after = slice.next;
    }
    return { byState, okBytesByNode };
  }

  async deleteBefore(bucket: number): Promise<number> {
    return this.db('stats_series').where('bucket', '<', bucket).delete();
  }

  /**
   * Logical bytes: what users' files (live and trashed, from the per-user counter the quota keeps)
   * and their kept versions would take without deduplication. Unique: each referenced content
   * once. The dashboard's dedupe gauges and `/metrics`' `dfs_dedupe_saved_bytes`.
   */
  async totals(): Promise<StatsTotals> {
    const [users, versions, contents] = await Promise.all([
      this.db('users').sum({ n: 'used_bytes' }).first(),
      this.db('file_versions').sum({ n: 'size' }).first(),
      this.db('contents').whereNull('unreferenced_since').sum({ n: 'size' }).first(),
    ]);
    const n = (row: { n?: unknown } | undefined) => Number(row?.n ?? 0);
    return { logicalBytes: n(users) + n(versions), uniqueBytes: n(contents) };
  }

  /** Distinct users with a session or an app password used since `since`. */
  async activeUsers(since: number): Promise<number> {
    const seen = this.db('sessions')
      .where('last_seen_at', '>=', since)
      .select('user_id')
      .union((q) => q.from('app_passwords').where('last_used_at', '>=', since).select('user_id'));
    const row = await this.db.from(seen.as('seen')).count({ n: '*' }).first();
    return Number(row?.n ?? 0);
  }
}
