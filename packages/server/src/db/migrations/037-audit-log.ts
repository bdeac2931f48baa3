import { createTable, ID, type Migration } from '../migration-kit.ts';

/**
 * The audit log (services/operations/audit.ts): who signed in, changed access or administered
 * the server, from where. No foreign keys: an event outlives the account and whatever it names,
 * and the actor's username is kept beside the id for that reason. The indexes serve the admin
 * listing's filters, each newest first (the `id` tie-break rides along in every secondary index).
 */
export const auditLog: Migration = {
  name: '037_audit_log',
  async up(db) {
    await createTable(db, 'audit_events', (t) => {
      t.bigIncrements('id');
      t.bigInteger('at').notNullable();
      t.string('actor_id', ID).nullable();
      t.string('actor_username', 255).nullable();
      t.string('action', 64).notNullable();
      t.string('target_type', 32).nullable();
      t.string('target_id', 255).nullable();
      t.string('address', 64).nullable();
      t.string('user_agent', 255).nullable();
      t.text('details').nullable();
      t.index(['at']);
      t.index(['actor_username', 'at']);
      t.index(['action', 'at']);
    });
  },
  async down(db) {
    await db.schema.dropTable('audit_events');
  },
};
