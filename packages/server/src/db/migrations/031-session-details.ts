import type { Migration } from '../migration-kit.ts';

/**
 * What a user needs to recognise their signed-in browsers and devices (user agent, address), and
 * the scope of an app password: `files` unless it was created with `admin`. Existing app
 * passwords become `files`: an admin's old app password no longer carries the admin role.
 */
export const sessionDetails: Migration = {
  name: '031_session_details',
  async up(db) {
    await db.schema.alterTable('sessions', (t) => {
      t.string('user_agent', 255).nullable();
      t.string('address', 64).nullable();
    });
    await db.schema.alterTable('app_passwords', (t) => {
      t.string('scope', 16).notNullable().defaultTo('files');
    });
  },
  async down(db) {
    await db.schema.alterTable('app_passwords', (t) => {
      t.dropColumn('scope');
    });
    await db.schema.alterTable('sessions', (t) => {
      t.dropColumn('address');
      t.dropColumn('user_agent');
    });
  },
};
