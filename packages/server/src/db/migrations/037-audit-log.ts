import type { Migration } from '../migration-kit.ts';

/** Placeholder for the audit log (services/operations/audit.ts): filled in by that work. */
export const auditLog: Migration = {
  name: '037_audit_log',
  async up() {},
  async down() {},
};
