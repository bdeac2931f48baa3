import { createTable, ID, type Migration } from '../migration-kit.ts';

/**
 * Sign-in through an identity provider (OIDC) or a directory (LDAP): the external identity an
 * account is linked to (by issuer and subject, never by a name that can be reassigned), a
 * disabled flag admins and directories set, and the short-lived state of an OIDC sign-in in
 * progress (any instance behind the load balancer may receive the callback).
 */
export const identities: Migration = {
  name: '029_identities',
  async up(db) {
    await createTable(db, 'user_identities', (t) => {
      t.string('id', ID).primary();
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.string('provider', 16).notNullable();
      t.string('issuer', 255).notNullable();
      t.string('subject', 255).notNullable();
      t.bigInteger('created_at').notNullable();
      t.bigInteger('last_used_at').nullable();
      t.unique(['provider', 'issuer', 'subject']);
      t.index(['user_id']);
    });
    await db.schema.alterTable('users', (t) => {
      t.bigInteger('disabled_at').nullable();
    });
    await createTable(db, 'oidc_logins', (t) => {
      t.string('state', 64).primary();
      t.string('nonce', 64).notNullable();
      t.string('code_verifier', 128).notNullable();
      // The callback URL the sign-in started with: the code is only redeemed with the same one.
      t.string('redirect_uri', 1024).notNullable();
      t.string('return_to', 1024).nullable();
      t.bigInteger('created_at').notNullable();
      t.bigInteger('expires_at').notNullable().index();
    });
  },
  async down(db) {
    await db.schema.dropTable('oidc_logins');
    await db.schema.alterTable('users', (t) => {
      t.dropColumn('disabled_at');
    });
    await db.schema.dropTable('user_identities');
  },
};
