import { createTable, type Migration } from '../migration-kit.ts';

/**
 * The admin dashboard's own time series (services/operations/stats.ts), so it works without
 * Prometheus: one value per metric and hour. Counters are the hour's sum, which every app
 * instance adds its own deltas to (so instances add up); gauges are the hour's latest value.
 * Old hours are deleted by the sampler itself.
 */
export const statsSeries: Migration = {
  name: '039_stats_series',
  async up(db) {
    await createTable(db, 'stats_series', (t) => {
      t.string('metric', 100).notNullable();
      /** The hour's start, epoch milliseconds. */
      t.bigInteger('bucket').notNullable();
      t.bigInteger('value').notNullable();
      t.primary(['metric', 'bucket']);
      // Range reads and retention go by time across every metric.
      t.index(['bucket']);
    });
  },
  async down(db) {
    await db.schema.dropTable('stats_series');
  },
};
