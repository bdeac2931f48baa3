import { existsSync } from 'node:fs';
import path from 'node:path';
import { connectionOptions, type TestDatabase } from '@dfs/cluster/mariadb';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseUrl } from '../support/db.ts';

const onMysql = process.env.DFS_TEST_DB === 'mysql';

describe('test database harness', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await testDatabaseUrl();
  });

  afterAll(async () => {
    await db?.drop();
  });

  it.runIf(onMysql)('gives a MySQL URL whose user owns a fresh, empty database', async () => {
    const url = new URL(db.url);
    expect(url.protocol).toBe('mysql:');
    const database = url.pathname.slice(1);
    expect(database).toMatch(/^dfs_test_[0-9a-f]+$/);

    const conn = await mysql.createConnection({
      host: url.hostname,
      port: Number(url.port),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database,
    });
    try {
      const [[row]] = await conn.query<mysql.RowDataPacket[]>(
        'SELECT VERSION() AS version, DATABASE() AS db',
      );
      // A server given through DFS_TEST_MYSQL_URL may be MySQL; the one we start is MariaDB.
      if (!process.env.DFS_TEST_MYSQL_URL) expect(row?.version).toMatch(/MariaDB/);
      expect(row?.db).toBe(database);

      const [tables] = await conn.query<mysql.RowDataPacket[]>('SHOW TABLES');
      expect(tables).toHaveLength(0);
      await conn.query('CREATE TABLE probe (name VARCHAR(255) NOT NULL)');
      await conn.query('INSERT INTO probe VALUES (?)', ['日本語 ✓ 😀']);
      const [[probe]] = await conn.query<mysql.RowDataPacket[]>('SELECT name FROM probe');
      expect(probe?.name).toBe('日本語 ✓ 😀');
    } finally {
      await conn.end();
    }
  });

  it.runIf(onMysql)('drops the database again', async () => {
    const other = await testDatabaseUrl();
    const url = new URL(other.url);
    expect(url.pathname).not.toBe(new URL(db.url).pathname);
    await other.drop();
    const conn = await mysql.createConnection(connectionOptions(other.url));
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW DATABASES LIKE ?', [
        url.pathname.slice(1),
      ]);
      expect(rows).toHaveLength(0);
    } finally {
      await conn.end();
    }
  });

  it.skipIf(onMysql)('gives a SQLite URL in its own directory, removed by drop()', async () => {
    expect(db.url).toMatch(/^sqlite:\/\/.+\/dfs\.sqlite$/);
    const file = db.url.slice('sqlite://'.length);
    expect(path.isAbsolute(file)).toBe(true);
    expect(existsSync(path.dirname(file))).toBe(true);

    const other = await testDatabaseUrl();
    expect(other.url).not.toBe(db.url);
    const otherDir = path.dirname(other.url.slice('sqlite://'.length));
    await other.drop();
    expect(existsSync(otherDir)).toBe(false);
  });
});
