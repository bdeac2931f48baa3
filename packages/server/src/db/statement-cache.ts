/** A better-sqlite3 connection, as far as the cache touches it. */
interface Preparing {
  prepare(sql: string): unknown;
}

/**
 * Keeps each SQLite connection's compiled statements for reuse.
 *
 * knex prepares every query anew on better-sqlite3: SQLite parses and plans it, and JavaScript
 * gets a new Statement object each time. That is about a tenth of a small upload's cost on the
 * app's thread, for the same few dozen statements all day. The cache is bounded and drops the
 * least recently used statement.
 *
 * Sharing a Statement between queries is safe because knex runs each one to completion with
 * `all` or `run` before the connection takes the next query. It never iterates a statement, and
 * it sets no per-statement modes that a later query would inherit. Those are facts about knex's
 * better-sqlite3 dialect, not promises of its API: test/unit/statement-cache.test.ts runs knex
 * over a recording connection and fails when a knex or better-sqlite3 update changes them.
 */
export function cacheStatements(conn: Preparing, max = 256): void {
  const prepare = conn.prepare.bind(conn);
  const cache = new Map<string, unknown>();
  conn.prepare = (sql: string) => {
    let statement = cache.get(sql);
    if (statement !== undefined) {
      // Most recently used last: Map keeps insertion order.
      cache.delete(sql);
    } else {
      statement = prepare(sql);
      if (cache.size >= max) cache.delete(cache.keys().next().value as string);
    }
    cache.set(sql, statement);
    return statement;
  };
}
