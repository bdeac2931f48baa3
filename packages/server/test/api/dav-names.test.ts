import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/knex.ts';
import { migrationSource } from '../../src/db/migrations.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { databaseBefore, testDatabaseUrl } from '../support/db.ts';

/**
 * A name is its exact characters on every database: MariaDB's PAD SPACE collations took
 * `notes.txt ` for `notes.txt`, so a WebDAV PUT of one replaced the other.
 */
describe('names that differ only in trailing spaces', () => {
  let t: TestApp;
  let basic: Record<string, string>;
  let headers: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp();
    const user = await t.user('spacey');
    headers = user.headers;
    const secret = await t.appPassword(user.headers, 'dav');
    basic = { authorization: `Basic ${Buffer.from(`spacey:${secret}`).toString('base64')}` };
  });
  afterAll(() => t.close());

  const put = (name: string, text: string) =>
    t.app.inject({
      method: 'PUT',
      url: `/dav/${encodeURIComponent(name)}`,
      headers: { ...basic, 'content-type': 'text/plain' },
      payload: text,
    });

  it('keeps `notes.txt` and `notes.txt ` as two files over WebDAV and the API', async () => {
    expect((await put('notes.txt', 'first')).statusCode).toBe(201);
    expect((await put('notes.txt ', 'second')).statusCode).toBe(201);
    expect((await put('notes.txt  ', 'third')).statusCode).toBe(201);
    const get = (name: string) =>
      t.app.inject({ method: 'GET', url: `/dav/${encodeURIComponent(name)}`, headers: basic });
    expect((await get('notes.txt')).body).toBe('first');
    expect((await get('notes.txt ')).body).toBe('second');
    expect((await get('notes.txt  ')).body).toBe('third');
    const names = (
      (await t.app.inject({ url: '/api/files', headers })).json().items as Array<{ name: string }>
    )
      .map((e) => e.name)
      .filter((n) => n.startsWith('notes'))
      .sort();
    expect(names).toEqual(['notes.txt', 'notes.txt ', 'notes.txt  ']);
    const folder = (name: string) =>
      t.app.inject({ method: 'POST', url: '/api/folders', headers, payload: { name } });
    expect((await folder('a')).statusCode).toBe(201);
    expect((await folder('a ')).statusCode).toBe(201);
  });
});

describe('the migration to exact names', () => {
  it('keeps the rows of an existing database and lets their space-suffixed namesakes in', async () => {
    const database = await testDatabaseUrl();
    const db = createDb(database.url);
    try {
      const { userId } = await databaseBefore(db, '014_no_pad_names');
      const row = (name: string) => ({
        id: randomUUID(),
        user_id: userId,
        parent_id: '',
        kind: 'file',
        name,
        live_name: name,
        size: 0,
        status: 'active',
        created_at: 1,
        updated_at: 1,
      });
      await db('user_files').insert(row('notes.txt'));

      await db.migrate.latest({ migrationSource });
      await db('user_files').insert(row('notes.txt '));
      const found = await db('user_files').where({ user_id: userId, live_name: 'notes.txt' }).select('name');
      expect(found.map((r) => r.name)).toEqual(['notes.txt']);
      const spaced = await db('user_files')
        .where({ user_id: userId, live_name: 'notes.txt ' })
        .select('name');
      expect(spaced.map((r) => r.name)).toEqual(['notes.txt ']);
      if (db.client.config.client === 'mysql2') {
        const [columns] = (await db.raw(
          "SELECT COLLATION_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'user_files' AND COLUMN_NAME IN ('name', 'live_name')",
        )) as [Array<{ c: string }>];
        expect(columns.map((r) => r.c)).toEqual([
          expect.stringMatching(/nopad_bin|0900_bin/),
          expect.anything(),
        ]);
        expect(new Set(columns.map((r) => r.c)).size).toBe(1);
      }
    } finally {
      await db.destroy();
      await database.drop();
    }
  });
});
