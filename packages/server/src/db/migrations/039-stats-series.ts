import type { Migration } from '../migration-kit.ts';

/** Placeholder for the admin dashboard's time series (services/operations/stats.ts): filled in by that work. */
export const statsSeries: Migration = {
  name: '039_stats_series',
  async up() {},
  async down() {},
};
