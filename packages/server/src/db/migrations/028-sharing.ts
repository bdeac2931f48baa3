import { binaryCollation, createTable, ID, type Migration } from '../migration-kit.ts';

/**
 * Shares with users and groups (services/sharing/): groups and who is in them (`source` says
 * whether dfs or a directory put them there, so a directory sync only touches its own), the
 * members of a shared file or folder (a user or a group, never both, with a role), and the
 * shares a recipient chose to leave (a group share cannot be deleted by one of its members).
 */
export const sharing: Migration = {
  name: '028_sharing',
  async up(db) {
    await createTable(db, 'groups', (t) => {
      t.string('id', ID).primary();
      binaryCollation(db, t.string('name', 100).notNullable().unique());
      t.string('source', 16).notNullable().defaultTo('local');
      t.bigInteger('created_at').notNullable();
    });
    await createTable(db, 'group_members', (t) => {
      t.string('group_id', ID).notNullable().references('groups.id').onDelete('CASCADE');
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.string('source', 16).notNullable().defaultTo('local');
      t.bigInteger('created_at').notNullable();
      t.primary(['group_id', 'user_id']);
      t.index(['user_id']);
    });
    await createTable(db, 'file_members', (t) => {
      t.string('id', ID).primary();
      t.string('file_id', ID).notNullable().references('user_files.id').onDelete('CASCADE');
      t.string('owner_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.string('user_id', ID).nullable().references('users.id').onDelete('CASCADE');
      t.string('group_id', ID).nullable().references('groups.id').onDelete('CASCADE');
      t.string('role', 16).notNullable();
      t.bigInteger('created_at').notNullable();
      t.unique(['file_id', 'user_id']);
      t.unique(['file_id', 'group_id']);
      t.index(['user_id']);
      t.index(['group_id']);
      t.index(['owner_id']);
    });
    await createTable(db, 'file_members_left', (t) => {
      t.string('member_id', ID).notNullable().references('file_members.id').onDelete('CASCADE');
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.primary(['member_id', 'user_id']);
    });
  },
  async down(db) {
    await db.schema.dropTable('file_members_left');
    await db.schema.dropTable('file_members');
    await db.schema.dropTable('group_members');
    await db.schema.dropTable('groups');
  },
};
