import { nameGrams } from '../../util/name-grams.ts';
import { createTable, ID, type Migration } from '../migration-kit.ts';

/**
 * Name search without a scan of the user's files: each entry's three-character pieces
 * (util/name-grams.ts), by user, so a search reads the entries holding its rarest pieces. Kept by
 * the file repository with the entry's name; rows go with their entry. Existing entries are
 * indexed here, a thousand at a time.
 */
export const nameGramsMigration: Migration = {
  name: '034_name_grams',
  async up(db) {
    await createTable(db, 'user_file_grams', (t) => {
      t.string('user_id', ID).notNullable();
      t.string('gram', 3).notNullable();
      t.string('file_id', ID).notNullable().references('user_files.id').onDelete('CASCADE');
      t.primary(['user_id', 'gram', 'file_id']);
      t.index(['file_id']);
    });
    let after = '';
    for (;;) {
      const rows: Array<{ id: string; user_id: string; name: string }> = await db('user_files')
        .where('id', '>', after)
        .orderBy('id')
        .limit(1000)
        .select('id', 'user_id', 'name');
      if (rows.length === 0) break;
      after = rows.at(-1)!.id;
      const grams = rows.flatMap((r) =>
        nameGrams(r.name).map((gram) => ({ user_id: r.user_id, gram, file_id: r.id })),
      );
      // 400 rows a statement: SQLite takes at most 500 terms of a compound SELECT (knex's insert).
      for (let i = 0; i < grams.length; i += 400) await db('user_file_grams').insert(grams.slice(i, i + 400));
    }
  },
  async down(db) {
    await db.schema.dropTable('user_file_grams');
  },
};
