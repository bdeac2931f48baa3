import type { Migration } from '../migration-kit.ts';

/**
 * `(user_id, size)` let the quota be summed from an index; the counters of `033_usage_counters`
 * replaced the sum, and the index only cost every write and misled MySQL's planner into walking
 * all of a user's entries by size for a folder listed by size.
 */
export const dropUsageIndex: Migration = {
  name: '035_drop_usage_index',
  async up(db) {
    await db.schema.alterTable('user_files', (t) => {
      t.dropIndex(['user_id', 'size'], 'user_files_usage');
    });
  },
  async down(db) {
    await db.schema.alterTable('user_files', (t) => {
      t.index(['user_id', 'size'], 'user_files_usage');
    });
  },
};
