import type { Migration } from '../migration-kit.ts';

/**
 * The hash budget: a content is named by its SHA-1 and by the root of its 1 MiB block table
 * (services/hashing/blocks.ts), no longer by a second, whole-file SHA-256 pass. New rows carry
 * `root` and an empty `sha256`; older rows keep their `sha256`, and their root is derived from
 * their table the first time a collision check needs it (or from their bytes, for the few whose
 * table cannot give it), then stored.
 */
export const contentRoots: Migration = {
  name: '036_content_roots',
  async up(db) {
    await db.schema.alterTable('contents', (t) => {
      t.string('root', 64).nullable();
    });
  },
  async down(db) {
    await db.schema.alterTable('contents', (t) => {
      t.dropColumn('root');
    });
  },
};
