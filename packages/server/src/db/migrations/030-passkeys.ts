import { createTable, ID, type Migration } from '../migration-kit.ts';

/**
 * Passkeys (WebAuthn): each registered credential's public key and signature counter, and the
 * single-use challenges of registrations and sign-ins in progress (in the database, so the
 * answer may reach another instance than the one that asked).
 *
 * A credential id is up to 1023 bytes (1364 base64url characters), too long for a unique index
 * on MySQL's utf8mb4; its SHA-256 is the unique key and the id itself is kept beside it.
 */
export const passkeys: Migration = {
  name: '030_passkeys',
  async up(db) {
    await createTable(db, 'passkeys', (t) => {
      t.string('id', ID).primary();
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.string('credential_hash', 64).notNullable().unique();
      t.text('credential_id').notNullable();
      t.text('public_key').notNullable();
      t.bigInteger('counter').notNullable().defaultTo(0);
      t.string('transports', 255).nullable();
      t.boolean('backed_up').notNullable().defaultTo(false);
      t.string('name', 100).notNullable();
      t.bigInteger('created_at').notNullable();
      t.bigInteger('last_used_at').nullable();
      t.index(['user_id']);
    });
    await createTable(db, 'webauthn_challenges', (t) => {
      t.string('id', ID).primary();
      t.string('user_id', ID).nullable().references('users.id').onDelete('CASCADE');
      t.string('challenge', 128).notNullable();
      t.string('purpose', 16).notNullable();
      t.bigInteger('expires_at').notNullable().index();
    });
  },
  async down(db) {
    await db.schema.dropTable('webauthn_challenges');
    await db.schema.dropTable('passkeys');
  },
};
