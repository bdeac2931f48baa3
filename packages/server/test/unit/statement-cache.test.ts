import Database from 'better-sqlite3';
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
