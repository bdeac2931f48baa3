import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numericFileId } from '../../src/util/file-ids.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/**
 * A PROPFIND of a big folder reads its entries a page at a time as it writes the answer, never
 * the whole folder at once, and still answers every entry once, in name order.
 */
describe('PROPFIND of a big folder', () => {
  const ENTRIES = 2500;
  let t: TestApp;
  let basic: string;
  beforeAll(async () => {
    t = await startTestApp();
    const user = await t.user('lister');
    const made = await t.app.inject({
      method: 'POST',
      url: '/api/folders',
      headers: user.headers,
      payload: { name: 'big' },
    });
    const folderId = made.json().file.id as string;
    // Rows as the app writes them, put in directly: thousands through the API would be slow.
    const rows = Array.from({ length: ENTRIES }, (_, i) => {
      const id = randomUUID();
      const name = `entry-${String(ENTRIES - i).padStart(5, '0')}.txt`;
      return {
        id,
        user_id: user.id,
        parent_id: folderId,
        kind: 'file',
        name,
        live_name: name,
        size: 0,
        mime: 'text/plain',
        status: 'active',
        created_at: 1,
        updated_at: 1,
        mtime: 1,
        oc_fileid: numericFileId(id),
      };
    });
    for (let i = 0; i < rows.length; i += 250)
      await t.app.services.db('user_files').insert(rows.slice(i, i + 250));
    basic = `Basic ${Buffer.from(`lister:${await t.appPassword(user.headers)}`).toString('base64')}`;
  });
  afterAll(() => t.close());

  it('answers every entry in name order, reading at most a page of rows per query', async () => {
    let largest = 0;
    const count = (response: unknown, query: { sql?: string }) => {
      if (query.sql?.includes('from `user_files`') && Array.isArray(response))
        largest = Math.max(largest, response.length);
    };
    const db = t.app.services.db;
    db.on('query-response', count);
    try {
      const res = await t.app.inject({
        method: 'PROPFIND' as 'GET',
        url: '/dav/big/',
        headers: { authorization: basic, depth: '1' },
      });
      expect(res.statusCode).toBe(207);
      expect(Number(res.headers['content-length'])).toBe(res.rawPayload.length);
      const hrefs = [...res.body.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1]!);
      const expected = Array.from(
        { length: ENTRIES },
        (_, i) => `/dav/big/entry-${String(i + 1).padStart(5, '0')}.txt`,
      );
      expect(hrefs).toEqual(['/dav/big/', ...expected]);
    } finally {
      db.removeListener('query-response', count);
    }
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThanOrEqual(1000);
  });
});
