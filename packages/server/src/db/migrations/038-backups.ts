import type { Migration } from '../migration-kit.ts';

/** Placeholder for the backups taken and the contents they list (services/operations/backup): filled in by that work. */
export const backupsMigration: Migration = {
  name: '038_backups',
  async up() {},
  async down() {},
};
