import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { sha1 } from '../support/bytes.ts';
import { postForm } from '../support/uploads.ts';

interface Event {
  id: string;
  at: string;
  action: string;
  fileId: string;
  kind: string;
  path: string | null;
  oldPath: string | null;
  sha1: string | null;
  oldSha1: string | null;
  actor: { type: string; name: string; via?: string; appPasswordId?: string };
}

describe('history of changes', () => {
  let t: TestApp;
  let clock = Date.parse('2026-12-01T10:00:00Z');
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let basic: Record<string, string>;
  let appPasswordId: string;

  beforeAll(async () => {
    t = await startTestApp({}, { now: () => clock });
    alice = await t.user('alice');
    await t.user('bob');
    const secret = await t.appPassword(alice.headers, 'Phone');
    basic = { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}` };
    const list = await t.app.inject({ url: '/api/auth/app-passwords', headers: alice.headers });
    appPasswordId = (list.json() as { items: Array<{ id: string; name: string }> }).items.find(
      (p) => p.name === 'Phone',
    )!.id;
  });
  afterAll(() => t.close());

  const api = (method: string, url: string, payload?: object) =>
    t.app.inject({ method: method as 'GET', url, headers: alice.headers, ...(payload ? { payload } : {}) });
  const history = async (query = '') => {
    const res = await api('GET', `/api/history${query}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { items: Event[]; nextCursor: string | null };
  };
  const tick = () => {
    clock += 1000;
  };

  it('records every kind of change, newest first, with paths, contents and who acted', async () => {
    const docs = (await api('POST', '/api/folders', { name: 'Docs' })).json().file.id as string;
    tick();
    const created = await postForm(t, alice.headers, 'a.txt', Buffer.from('one'), docs);
    const fileId = created.json().file.id as string;
    tick();
    expect(
      (await t.app.inject({ method: 'PUT', url: '/dav/Docs/a.txt', headers: basic, payload: 'two!' }))
        .statusCode,
    ).toBe(204);
    tick();
    expect((await api('PATCH', `/api/files/${fileId}`, { name: 'b.txt' })).statusCode).toBe(200);
    tick();
    expect((await api('PATCH', `/api/files/${fileId}`, { parentId: null })).statusCode).toBe(200);
    tick();
    expect((await api('DELETE', `/api/files/${fileId}`)).statusCode).toBe(204);
    tick();
    expect((await api('POST', `/api/trash/${fileId}/restore`)).statusCode).toBe(200);
    tick();
    expect((await api('DELETE', `/api/files/${fileId}`)).statusCode).toBe(204);
    tick();
    expect((await api('DELETE', `/api/trash/${fileId}`)).statusCode).toBe(204);

    const { items } = await history();
    const mine = items.filter((e) => e.fileId === fileId);
    expect(mine.map((e) => [e.action, e.oldPath, e.path])).toEqual([
      ['purged', '/b.txt', null],
      ['trashed', '/b.txt', null],
      ['restored', '/b.txt', '/b.txt'],
      ['trashed', '/b.txt', null],
      ['moved', '/Docs/b.txt', '/b.txt'],
      ['renamed', '/Docs/a.txt', '/Docs/b.txt'],
      ['replaced', '/Docs/a.txt', '/Docs/a.txt'],
      ['created', null, '/Docs/a.txt'],
    ]);
    const replaced = mine.find((e) => e.action === 'replaced')!;
    expect(replaced).toMatchObject({ sha1: sha1('two!'), oldSha1: sha1('one') });
    expect(replaced.actor).toMatchObject({
      type: 'app_password',
      name: 'Phone',
      via: 'webdav',
      appPasswordId,
    });
    expect(mine.find((e) => e.action === 'created')!.actor).toMatchObject({ type: 'session', name: 'web' });
    expect(Date.parse(mine.find((e) => e.action === 'created')!.at)).toBe(Date.parse('2026-12-01T10:00:01Z'));
    expect(items.find((e) => e.fileId === docs)).toMatchObject({
      action: 'created',
      path: '/Docs',
      kind: 'folder',
    });
    // Ids are in the order of the changes.
    const ids = items.map((e) => Number(e.id));
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);

    // A folder's history: what happened in it, including what moved out of it; not after.
    const inDocs = await history(`?folderId=${docs}`);
    expect(inDocs.items.map((e) => e.action)).toEqual(['moved', 'renamed', 'replaced', 'created', 'created']);
    // By actor, and by time.
    const byPhone = await history(`?appPasswordId=${appPasswordId}`);
    expect(byPhone.items.map((e) => e.action)).toEqual(['replaced']);
    expect((await history('?actorType=app_password')).items).toHaveLength(1);
    const window = await history(`?since=2026-12-01T10:00:03Z&until=2026-12-01T10:00:04Z`);
    expect(window.items.map((e) => e.action)).toEqual(['moved', 'renamed']);
  });

  it('pages with a cursor, every event once, and keeps users apart', async () => {
    for (let i = 0; i < 7; i++) {
      tick();
      await postForm(t, alice.headers, `p${i}.txt`, Buffer.from(`page ${i}`));
    }
    const all = (await history('?limit=1000')).items.map((e) => e.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await history(`?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.items.length).toBeLessThanOrEqual(3);
      seen.push(...page.items.map((e) => e.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all);
    const bob = await t.app.inject({
      url: '/api/auth/signin',
      method: 'POST',
      payload: { username: 'bob', password: 'correct horse battery' },
    });
    const bobHistory = await t.app.inject({
      url: '/api/history',
      headers: { authorization: `Bearer ${bob.json().token}` },
    });
    expect(bobHistory.json().items).toEqual([]);
    expect((await api('GET', '/api/history?folderId=nope')).statusCode).toBe(404);
    expect((await api('GET', '/api/history?since=yesterday')).statusCode).toBe(400);
  });
});
