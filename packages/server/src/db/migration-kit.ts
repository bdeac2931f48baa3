import type { Knex } from 'knex';

/**
 * Migrations live in code (not a folder scan) so they run the same under tsx, in the bundle and
 * in tests. Times are epoch milliseconds in BIGINT columns: the one representation that reads back
 * identically from SQLite and MySQL. Name columns are binary-collated on MySQL so `A.txt` and
 * `a.txt` are different names there too, as on SQLite.
 */
export interface Migration {
  name: string;
  up(db: Knex): Promise<void>;
  down(db: Knex): Promise<void>;
}

export const ID = 36;

/** A new table with the engine and binary collation every dfs table has on MySQL. */
export function createTable(db: Knex, name: string, build: (t: Knex.CreateTableBuilder) => void) {
  const mysql = db.client.config.client === 'mysql2';
  return db.schema.createTable(name, (t) => {
    if (mysql) {
      t.engine('InnoDB');
      t.charset('utf8mb4');
      t.collate('utf8mb4_bin');
    }
    build(t);
  });
}

export function binaryCollation(db: Knex, column: Knex.ColumnBuilder): Knex.ColumnBuilder {
  return db.client.config.client === 'mysql2' ? column.collate('utf8mb4_bin') : column;
}
