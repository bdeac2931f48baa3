import { createTable, ID, type Migration } from '../migration-kit.ts';

/**
 * One row per metadata backup (services/operations/backup). The collector reads it to keep the
 * contents a young backup may list: a content created before a backup's `taken_at` and left
 * unreferenced after it (repositories/contents.ts, `listCollectable`). A handful of rows, never one
 * per content, so the rule costs the same whatever the size of the backups.
 */
export const backupsMigration: Migration = {
  name: '038_backups',
  async up(db) {
    await createTable(db, 'backups', (t) => {
      t.string('id', ID).primary();
      // Recorded before the snapshot starts, so it is never later than what the snapshot saw.
      t.bigInteger('taken_at').notNullable().index();
      t.bigInteger('finished_at').nullable();
      t.string('dir', 1024).notNullable();
      // manual (`dfs admin backup`) | scheduled (DFS_BACKUP_CRON; pruned after DFS_BACKUP_KEEP_DAYS)
      t.string('kind', 16).notNullable();
      t.string('db_kind', 16).notNullable();
      // running | complete | failed | pruned
      t.string('status', 16).notNullable();
      t.bigInteger('contents').nullable();
      t.bigInteger('bytes').nullable();
      t.text('error').nullable();
    });
  },
  async down(db) {
    await db.schema.dropTable('backups');
  },
};
