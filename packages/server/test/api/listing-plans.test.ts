import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numericFileId } from '../../src/util/file-ids.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/**
 * A folder listed in any of its sort orders is read through that order's folder index, not by
 * walking all of the user's entries in that order and keeping the folder's (what MariaDB chose
 * for the size order while an index on the user's sizes existed).
 */
// MariaDB's planner is the one that chose badly; SQLite's plans are its own and not checked here.
describe.runIf(process.env.DFS_TEST_DB === 'mysql')('the plans of a folder listing', () => {
  let t: TestApp;
  let userId: string;
  let folderId: string;
  beforeAll(async () => {
    t = await startTestApp();
    const user = await t.user('planner');
    userId = user.id;
    const made = async (name: string) =>
      (
        await t.app.inject({ method: 'POST', url: '/api/folders', headers: user.headers, payload: { name } })
      ).json().file.id as string;
    folderId = await made('listed');
    const other = await made('other');
    const rows = Array.from({ length: 2000 }, (_, i) => {
      const id = randomUUID();
      const name = `f-${i}.bin`;
      return {
        id,
        user_id: userId,
        parent_id: i % 2 === 0 ? folderId : other,
        kind: 'file',
        name,
        live_name: name,
        size: i,
        status: 'active',
        created_at: i,
        updated_at: i,
        mtime: i,
        oc_fileid: numericFileId(id),
      };
    });
    for (let i = 0; i < rows.length; i += 250)
      await t.app.services.db('user_files').insert(rows.slice(i, i + 250));
    await t.app.services.db.raw('ANALYZE TABLE user_files');
  });
  afterAll(() => t.close());

  it.runIf(process.env.DFS_TEST_DB === 'mysql')(
    'uses the folder index of each sort order on MariaDB',
    async () => {
      const db = t.app.services.db;
      const files = t.app.services.repos.files;
      for (const sort of ['name', 'size', 'createdAt', 'updatedAt', 'mtime'] as const) {
        const pages: Array<{ sql: string; bindings: unknown[] }> = [];
        const seen = (query: { sql: string; bindings: unknown[] }) => {
          if (query.sql.includes('order by') && query.sql.includes('`user_files`')) pages.push(query);
        };
        db.on('query', seen);
        try {
          await files.list(userId, { parentId: folderId }, { sort, order: 'desc', limit: 100, offset: 0 });
        } finally {
          db.removeListener('query', seen);
        }
        expect(pages.length, sort).toBeGreaterThan(0);
        for (const q of pages) {
          const [plan] = (await db.raw(`EXPLAIN ${q.sql}`, q.bindings as never)) as [
            Array<{ table: string; key: string }>,
          ];
          expect(plan.find((p) => p.table === 'user_files')?.key, sort).toMatch(/^user_files_folder_/);
        }
      }
    },
  );
});
