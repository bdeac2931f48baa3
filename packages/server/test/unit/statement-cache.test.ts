import Database from 'better-sqlite3';
import knexFactory from 'knex';
import { describe, expect, it } from 'vitest';
import { cacheStatements } from '../../src/db/statement-cache.ts';

describe('cacheStatements', () => {
  it('hands back the compiled statement for SQL it has seen, and forgets the least recently used', () => {
    const db = new Database(':memory:');
    cacheStatements(db, 2);
    db.prepare('create table t (n integer)').run();
    const insert = db.prepare('insert into t (n) values (?)');
    expect(db.prepare('insert into t (n) values (?)')).toBe(insert);
    const count = db.prepare('select count(*) as c from t');
    // Used again: the insert is now the most recent, so the next new statement evicts the count.
    expect(db.prepare('insert into t (n) values (?)')).toBe(insert);
    const sum = db.prepare('select sum(n) as s from t');
    expect(db.prepare('insert into t (n) values (?)')).toBe(insert);
    expect(db.prepare('select count(*) as c from t')).not.toBe(count);
    // A shared statement runs to completion each time: results stay right across reuses.
    for (const n of [1, 2, 3]) db.prepare('insert into t (n) values (?)').run(n);
    expect(db.prepare('select sum(n) as s from t').get()).toEqual({ s: 6 });
    expect(sum).toBeDefined();
    db.close();
  });
});

/**
 * The cache relies on how knex drives better-sqlite3: every query through `connection.prepare`,
 * then only `reader` and `all` or `run` on the statement (no iterate, no raw/pluck/expand or
 * safeIntegers modes that a later query sharing the statement would inherit). A knex or
 * better-sqlite3 update that changes this fails here instead of silently serving wrong rows.
 */
describe('knex on better-sqlite3, as the statement cache assumes', () => {
  it('prepares every query through the connection and uses a statement only with all or run', async () => {
    const used = new Set<string>();
    const prepared: string[] = [];
    const db = knexFactory({
      client: 'better-sqlite3',
      connection: { filename: ':memory:' },
      useNullAsDefault: true,
      pool: {
        min: 1,
        max: 1,
        afterCreate(conn: Database.Database, done: (err: Error | null, conn: unknown) => void) {
          const prepare = conn.prepare.bind(conn);
          // What knex touches on each statement, recorded under the cache as the cache is installed.
          (conn as { prepare: (sql: string) => unknown }).prepare = (sql: string) => {
            prepared.push(sql);
            const statement = prepare(sql);
            return new Proxy(statement, {
              get(target, key, receiver) {
                used.add(String(key));
                const value = Reflect.get(target, key, receiver);
                return typeof value === 'function' ? value.bind(target) : value;
              },
            });
          };
          cacheStatements(conn);
          done(null, conn);
        },
      },
    });
    let queries = 0;
    db.on('query', () => queries++);
    try {
      await db.schema.createTable('t', (t) => {
        t.increments('id');
        t.string('name');
      });
      for (let i = 0; i < 5; i++) {
        await db('t').insert({ name: `n${i}` });
        await db('t')
          .where({ name: `n${i}` })
          .first();
        await db('t')
          .where({ name: `n${i}` })
          .update({ name: `m${i}` });
        await db.transaction(async (tx) => {
          await tx('t').count({ c: '*' });
          await tx.raw('select max(id) as m from t');
        });
      }
      await db('t').del();
      expect(await db('t').count({ c: '*' })).toEqual([{ c: 0 }]);
    } finally {
      await db.destroy();
    }
    // Every query went through `prepare`, and the repeated ones came from the cache.
    expect(prepared.length).toBeGreaterThan(0);
    expect(prepared.length).toBeLessThan(queries);
    expect(new Set(prepared).size).toBe(prepared.length);
    expect([...used].filter((k) => !['reader', 'all', 'run'].includes(k))).toEqual([]);
  });
});
