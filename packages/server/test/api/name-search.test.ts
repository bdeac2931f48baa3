import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

type User = Awaited<ReturnType<TestApp['user']>>;

/**
 * Name search through the index of names' three-character pieces: the same answers as a scan of
 * the user's live names with LIKE (what search was before the index), renames and restores
 * included, and the index really is what answers.
 */
describe('name search by pieces', () => {
  let t: TestApp;
  let alice: User;
  let bob: User;
  beforeAll(async () => {
    t = await startTestApp();
    alice = await t.user('alice');
    bob = await t.user('bob');
  });
  afterAll(() => t.close());

  const api = (user: User, method: string, url: string, payload?: object) =>
    t.app.inject({ method: method as 'GET', url, headers: user.headers, ...(payload ? { payload } : {}) });
  const folder = async (user: User, name: string) => {
    const res = await api(user, 'POST', '/api/folders', { name });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().file as { id: string };
  };
  const search = async (user: User, q: string) => {
    const res = await api(user, 'GET', `/api/files?q=${encodeURIComponent(q)}&limit=1000`);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { items: Array<{ name: string }>; total: number };
    expect(body.total).toBe(body.items.length);
    return body.items.map((i) => i.name).sort();
  };
  /** The scan search was: the user's live names containing the lowercased text, by LIKE. */
  const scan = async (user: User, q: string) => {
    const pattern = `%${q.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`)}%`;
    const rows: Array<{ name: string }> = await t.app.services
      .db('user_files')
      .where({ user_id: user.id, status: 'active' })
      .andWhereRaw("LOWER(name) LIKE ? ESCAPE '!'", [pattern])
      .select('name');
    return rows.map((r) => r.name).sort();
  };

  it('answers what a scan of the names answers', async () => {
    const names = [
      'Quarterly_Report.PDF',
      'quarterly-notes.txt',
      'QUARTERLY',
      'x%y_z!w',
      'ab',
      'Ümlaut Über.txt',
      'İstanbul trip',
      '\u212Aelvin scale',
      'photo 2026-12-07.jpg',
      'emoji 😀 file',
    ];
    for (const name of names) await folder(alice, name);
    const gone = await folder(alice, 'quarterly-trashed');
    expect((await api(alice, 'DELETE', `/api/files/${gone.id}`)).statusCode).toBe(204);
    await folder(bob, 'quarterly-of-bob');
    const queries = [
      'quarterly',
      'QUARTER',
      'y_R',
      '%',
      '%y_',
      'z!w',
      'ab',
      'a',
      'über',
      'istanbul',
      'kelvin',
      '2026-12',
      '.jpg',
      '😀 f',
      'nothing like it',
      'rly',
    ];
    for (const q of queries) expect(await search(alice, q), q).toEqual(await scan(alice, q));
    expect(await search(alice, 'quarterly')).toEqual([
      'QUARTERLY',
      'Quarterly_Report.PDF',
      'quarterly-notes.txt',
    ]);
  });

  it('follows renames and restores under a new name, and is what answers', async () => {
    const entry = await folder(alice, 'before-rename');
    expect((await api(alice, 'PATCH', `/api/files/${entry.id}`, { name: 'after-rename' })).statusCode).toBe(
      200,
    );
    expect(await search(alice, 'before-ren')).toEqual([]);
    expect(await search(alice, 'after-ren')).toEqual(['after-rename']);

    // Restored beside a namesake made meanwhile: it comes back as `dup (1)`.
    const dup = await folder(alice, 'dup');
    expect((await api(alice, 'DELETE', `/api/files/${dup.id}`)).statusCode).toBe(204);
    await folder(alice, 'dup');
    expect((await api(alice, 'POST', `/api/trash/${dup.id}/restore`)).statusCode).toBe(200);
    expect(await search(alice, 'dup (')).toEqual(await scan(alice, 'dup ('));
    expect(await search(alice, 'dup (')).toHaveLength(1);

    // The pieces are what a search reads: without an entry's, a search by three characters
    // misses it (a scan would not), while one by two characters still scans.
    await t.app.services.db('user_file_grams').where({ file_id: entry.id }).delete();
    expect(await search(alice, 'after-ren')).toEqual([]);
    expect(await search(alice, 'af')).toContain('after-rename');
  });

  it('drops an entry’s pieces with the entry', async () => {
    const entry = await folder(alice, 'purge-me');
    expect((await api(alice, 'DELETE', `/api/files/${entry.id}`)).statusCode).toBe(204);
    const pieces = () => t.app.services.db('user_file_grams').where({ file_id: entry.id }).count({ n: '*' });
    expect(Number((await pieces())[0]!.n)).toBeGreaterThan(0);
    expect((await api(alice, 'DELETE', `/api/trash/${entry.id}`)).statusCode).toBe(204);
    expect(Number((await pieces())[0]!.n)).toBe(0);
  });
});
