import type { Knex } from 'knex';

/** What only the metrics scrape reads (the replica and byte totals are the stats repository's). */
export class MetricsRepository {
  constructor(private readonly db: Knex) {}

  /** Jobs users started that are still running, by kind. */
  async runningUserJobs(): Promise<Map<string, number>> {
    const rows = await this.db('user_jobs')
      .where({ state: 'running' })
      .groupBy('kind')
      .select<Array<{ kind: string; n: number | string }>>('kind', this.db.raw('count(*) as n'));
    return new Map(rows.map((row) => [row.kind, Number(row.n)]));
  }
}
