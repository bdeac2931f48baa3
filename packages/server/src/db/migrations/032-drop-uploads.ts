import type { Migration } from '../migration-kit.ts';

/**
 * Resumable uploads through an upload request: the chunked sessions a share link opened (the
 * link, not an account, may resume them; their declared sizes hold the link's byte limit while
 * they are open) and the name the uploader typed, for the history of the file they make.
 */
export const dropUploads: Migration = {
  name: '032_drop_uploads',
  async up(db) {
    await db.schema.alterTable('uploads', (t) => {
      t.string('share_token', 64).nullable().index();
      t.string('uploader', 100).nullable();
    });
  },
  async down(db) {
    await db.schema.alterTable('uploads', (t) => {
      t.dropIndex(['share_token']);
      t.dropColumn('uploader');
      t.dropColumn('share_token');
    });
  },
};
