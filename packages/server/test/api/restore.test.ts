import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random, sha1 } from '../support/bytes.ts';
import { type Entry, treeClient } from '../support/tree.ts';
import { postForm } from '../support/uploads.ts';

describe('point-in-time restore', () => {
  let t: TestApp;
  let clock = Date.parse('2026-11-01T09:00:00Z');
  let alice: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    t = await startTestApp({}, { now: () => clock, restoreInlineEntries: 50 });
    alice = await t.user('alice');
  });
  afterAll(() => t.close());

  const { api, folder, list, tree } = treeClient(
    () => t,
    () => alice,
  );
  const upload = async (
    name: string,
    data: Buffer,
    parentId?: string,
    fields: Record<string, string> = {},
  ) => {
    const res = await postForm(t, alice.headers, name, data, parentId, fields);
    expect(res.statusCode, res.body).toBe(201);
    return res.json().file as Entry;
  };

  const patch = (id: string, body: object) => api('PATCH', `/api/files/${id}`, body);
  const restore = (folderId: string | null, at: number) =>
    api('POST', '/api/restore', { folderId, at: new Date(at).toISOString() });

  it('puts a folder back as it was: contents, names, places, out of the trash; what came later goes to the trash', async () => {
    const docs = await folder('Docs');
    const sub = await folder('sub', docs.id);
    const a1 = random(300);
    const a = await upload('a.txt', a1, docs.id);
    const b = await upload('b.txt', random(200), docs.id);
    const c = await upload('c.txt', random(100), sub.id);
    const outside = await upload('outside.txt', random(50));
    const before = await tree(docs.id);
    clock += 60_000;
    const at = clock;
    clock += 60_000;
    const a2 = random(400);
    expect((await upload('a.txt', a2, docs.id, { onConflict: 'replace' })).id).toBe(a.id);
    expect((await patch(b.id, { name: 'b2.txt' })).statusCode).toBe(200);
    expect((await patch(c.id, { parentId: docs.id })).statusCode).toBe(200);
    expect((await api('DELETE', `/api/files/${sub.id}`)).statusCode).toBe(204);
    await upload('new.txt', random(10), docs.id);
    // Outside the folder: left alone by the folder's restore.
    expect((await patch(outside.id, { name: 'outside2.txt' })).statusCode).toBe(200);
    clock += 60_000;

    // The past can be read before it is restored.
    const then = await list(docs.id, at);
    expect(then.map((e) => [e.name, e.sha1])).toEqual([
      ['sub', null],
      ['a.txt', sha1(a1)],
      ['b.txt', b.sha1],
    ]);
    const old = await api('GET', `/api/files/${a.id}/content?at=${new Date(at).toISOString()}`);
    expect(old.statusCode).toBe(200);
    expect(old.rawPayload.equals(a1)).toBe(true);
    expect((await list(sub.id, at)).map((e) => e.name)).toEqual(['c.txt']);
    const early = await api(
      'GET',
      `/api/files?parentId=${sub.id}&at=${new Date(at - 3_600_000).toISOString()}`,
    );
    expect(early.statusCode).toBe(404);

    const res = await restore(docs.id, at);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ restored: 4, trashed: 1, unchanged: 0, unavailable: 0 });
    expect(await tree(docs.id)).toEqual(before);
    // The content replaced by the restore is a version; the one restored is current again.
    const versions = (await api('GET', `/api/files/${a.id}/versions`)).json().items as Entry[];
    expect(versions.map((v) => v.sha1)).toEqual([sha1(a1), sha1(a2)]);
    expect((await list()).map((e) => e.name)).toContain('outside2.txt');
    const trash = (await api('GET', '/api/trash')).json().items as Entry[];
    expect(trash.map((e) => e.name)).toContain('new.txt');
    // History tells the restore's changes as the user's, made by a restore.
    const history = (await api('GET', `/api/history?folderId=${docs.id}&limit=5`)).json().items;
    expect(history[0].actor).toMatchObject({ type: 'session', via: 'restore' });
    // Again: nothing left to do.
    const again = await restore(docs.id, at);
    expect(again.json()).toMatchObject({ restored: 0, trashed: 0, unavailable: 0 });
  });

  it('undoes swapped names and a folder moved into what it held, and says what it cannot bring back', async () => {
    const top = await folder('Swap');
    const p = await folder('P', top.id);
    const q = await folder('Q', p.id);
    const x = await upload('x.txt', random(11), top.id);
    const y = await upload('y.txt', random(12), top.id);
    const gone = await upload('gone.txt', random(13), top.id);
    const before = await tree(top.id);
    clock += 1_000;
    const at = clock;
    clock += 1_000;
    // x ↔ y by way of a third name, and P moved into its own former child Q.
    await patch(x.id, { name: 'tmp' });
    await patch(y.id, { name: 'x.txt' });
    await patch(x.id, { name: 'y.txt' });
    await patch(q.id, { parentId: top.id });
    expect((await patch(p.id, { parentId: q.id })).statusCode).toBe(200);
    expect((await api('DELETE', `/api/files/${gone.id}`)).statusCode).toBe(204);
    expect((await api('DELETE', `/api/trash/${gone.id}`)).statusCode).toBe(204);
    clock += 1_000;
    const res = await restore(null, at);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ restored: 4, unavailable: 1 });
    const { 'gone.txt': _, ...rest } = before;
    expect(await tree(top.id)).toEqual(rest);
  });

  it('runs a large restore as a job with progress', async () => {
    const big = await folder('Big');
    const names: string[] = [];
    for (let i = 0; i < 60; i++) names.push((await upload(`f${i}.bin`, random(20 + i), big.id)).id);
    const before = await tree(big.id);
    clock += 1_000;
    const at = clock;
    clock += 1_000;
    for (const id of names) await patch(id, { name: `${id}.locked` });
    const res = await restore(big.id, at);
    expect(res.statusCode, res.body).toBe(202);
    const { jobId } = res.json() as { jobId: string };
    await t.app.services.userJobs.idle();
    const job = await api('GET', `/api/jobs/${jobId}`);
    expect(job.statusCode).toBe(200);
    expect(job.json()).toMatchObject({
      state: 'done',
      progress: { done: 60, total: 60 },
      result: { restored: 60, trashed: 0, unavailable: 0 },
    });
    expect(await tree(big.id)).toEqual(before);
    const bob = await t.user('bob');
    expect((await api('GET', `/api/jobs/${jobId}`, undefined, bob.headers)).statusCode).toBe(404);
  });

  it('refuses bad input with a clear error', async () => {
    const bad = await api('POST', '/api/restore', { folderId: null, at: 'yesterday' });
    expect(bad.statusCode).toBe(400);
    expect((await restore('nope', clock)).statusCode).toBe(404);
    expect(errorCode(await api('GET', `/api/files?q=a&at=${new Date(clock).toISOString()}`))).toBe(
      'bad_request',
    );
  });
});
