import { createTable, ID, type Migration } from '../migration-kit.ts';

/**
 * Passkeys (WebAuthn): each registered credential's public key and signature counter, and the
 * single-use challenges of registrations and sign-ins in progress (in the database, so the
 * answer may reach another instance than the one that asked).
 */
export const passkeys: Migration = {
  name: '030_passkeys',
  async up(db) {
    await createTable(db, 'passkeys', (t) => {
      t.string('id', ID).primary();
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.string('credential_id', 512).notNullable().unique();
      t.text('public_key').notNullable();
      t.bigInteger('counter').notNullable().defaultTo(0);
      t.string('transports', 255).nullable();
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
