import type { Migration } from '../migration-kit.ts';

/**
 * What the quota and the entry cap check, kept on the user's row instead of summed over their
 * files on every upload: `used_bytes` is the size of all their entries (live and trashed, as the
 * quota counts them), `entry_count` how many there are. The file repository changes both in the
 * transaction of every write that changes them; existing accounts are summed once here. The
 * unfinished uploads' reservations are still summed (they lapse with time), over an index of
 * the pending ones rather than every upload the user made.
 */
export const usageCounters: Migration = {
  name: '033_usage_counters',
  async up(db) {
    await db.schema.alterTable('users', (t) => {
      t.bigInteger('used_bytes').notNullable().defaultTo(0);
      t.bigInteger('entry_count').notNullable().defaultTo(0);
    });
    await db.schema.alterTable('uploads', (t) => {
      t.index(['user_id', 'status', 'expires_at'], 'uploads_pending');
    });
    await db('users').update({
      used_bytes: db.raw('(SELECT COALESCE(SUM(f.size), 0) FROM user_files f WHERE f.user_id = users.id)'),
      entry_count: db.raw('(SELECT COUNT(*) FROM user_files f WHERE f.user_id = users.id)'),
    });
  },
  async down(db) {
    await db.schema.alterTable('uploads', (t) => {
      t.dropIndex(['user_id', 'status', 'expires_at'], 'uploads_pending');
    });
    await db.schema.alterTable('users', (t) => {
      t.dropColumn('entry_count');
      t.dropColumn('used_bytes');
    });
  },
};
