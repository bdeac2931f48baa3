import type { Knex } from 'knex';

/** Whole-installation totals for the metrics scrape: a few aggregate queries, no per-row work. */
export class MetricsRepository {
  constructor(private readonly db: Knex) {}

  async replicaStates(): Promise<{ ok: number; missing: number; corrupt: number }> {
    // Grouped in the order of the (node_id, state) index: one pass over it and no sort, about
    // half the time of grouping by state alone.
    const rows = await this.db('replicas')
      .groupBy('node_id', 'state')
      .select<Array<{ state: string; n: number | string }>>('state', this.db.raw('count(*) as n'));
    const out = { ok: 0, missing: 0, corrupt: 0 };
    for (const row of rows) {
      if (row.state === 'ok' || row.state === 'missing' || row.state === 'corrupt')
        out[row.state] += Number(row.n);
    }
    return out;
  }

  /**
   * Logical bytes: what users' files (live and trashed, from the per-user counter the quota keeps)
   * and their kept versions would take without deduplication. Physical: each referenced content once.
   */
  async storedBytes(): Promise<{ logical: number; physical: number }> {
    const [users, versions, contents] = await Promise.all([
      this.db('users').sum({ bytes: 'used_bytes' }).first(),
      this.db('file_versions').sum({ bytes: 'size' }).first(),
      this.db('contents').whereNull('unreferenced_since').sum({ bytes: 'size' }).first(),
    ]);
    const bytes = (row: { bytes?: unknown } | undefined) => Number(row?.bytes ?? 0);
    return { logical: bytes(users) + bytes(versions), physical: bytes(contents) };
  }

  /** Jobs users started that are still running, by kind. */
  async runningUserJobs(): Promise<Map<string, number>> {
    const rows = await this.db('user_jobs')
      .where({ state: 'running' })
      .groupBy('kind')
      .select<Array<{ kind: string; n: number | string }>>('kind', this.db.raw('count(*) as n'));
    return new Map(rows.map((row) => [row.kind, Number(row.n)]));
  }
}
