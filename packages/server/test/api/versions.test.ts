import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect } from '../../src/jobs/maintenance.ts';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random, sha1 } from '../support/bytes.ts';
import { CHUNK, postForm, uploader } from '../support/uploads.ts';

const TUS = { 'tus-resumable': '1.0.0' };
const b64 = (s: string) => Buffer.from(s).toString('base64');

interface Version {
  id: string;
  size: number;
  sha1: string;
  createdAt: string;
  mtime: string | null;
  current: boolean;
  actor: { type: string; name: string; via?: string } | null;
}

describe('file versions', () => {
  let t: TestApp;
  let clock = Date.now();
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let basic: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) }, { now: () => clock });
    alice = await t.user('alice');
    const secret = await t.appPassword(alice.headers, 'Laptop sync');
    basic = { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}` };
  });
  afterAll(() => t.close());

  const api = (method: string, url: string, payload?: object) =>
    t.app.inject({ method: method as 'GET', url, headers: alice.headers, ...(payload ? { payload } : {}) });
  const versionsOf = async (id: string) => {
    const res = await api('GET', `/api/files/${id}/versions`);
    expect(res.statusCode, res.body).toBe(200);
    return (res.json() as { items: Version[] }).items;
  };
  const fileNamed = async (name: string) =>
    (await api('GET', `/api/files?q=${encodeURIComponent(name)}`)).json().items[0] as {
      id: string;
      sha1: string;
    };
  const gcDeps = () => ({
    repos: t.app.services.repos,
    cluster: t.app.services.cluster,
    log: t.app.log,
    now: () => clock,
    gcGraceMs: 3600_000,
  });
  const davPut = (path: string, data: Buffer | string) =>
    t.app.inject({ method: 'PUT', url: `/dav/${encodeURIComponent(path)}`, headers: basic, payload: data });

  it('keeps the replaced content of a WebDAV PUT as a version, and names who made each', async () => {
    const v1 = random(1000);
    const v2 = random(2000);
    expect((await postForm(t, alice.headers, 'report.txt', v1)).statusCode).toBe(201);
    const file = await fileNamed('report.txt');
    clock += 60_000;
    expect((await davPut('report.txt', v2)).statusCode).toBe(204);
    const items = await versionsOf(file.id);
    expect(items.map((v) => [v.current, v.sha1, v.size])).toEqual([
      [true, sha1(v2), v2.length],
      [false, sha1(v1), v1.length],
    ]);
    expect(items[0]!.actor).toMatchObject({ type: 'app_password', name: 'Laptop sync', via: 'webdav' });
    expect(items[1]!.actor).toMatchObject({ type: 'session', name: 'web', via: 'api' });
    // Newest first, and each says when it became the file's content.
    expect(Date.parse(items[0]!.createdAt)).toBe(clock);
    expect(Date.parse(items[1]!.createdAt)).toBe(clock - 60_000);
    const old = await api('GET', `/api/files/${file.id}/versions/${items[1]!.id}/content`);
    expect(old.statusCode).toBe(200);
    expect(old.rawPayload.equals(v1)).toBe(true);
    expect(old.headers.etag).toBe(`"${sha1(v1)}"`);
    const current = await api('GET', `/api/files/${file.id}/versions/current/content`);
    expect(current.rawPayload.equals(v2)).toBe(true);
    // The same bytes again make no version.
    expect((await davPut('report.txt', v2)).statusCode).toBe(204);
    expect(await versionsOf(file.id)).toHaveLength(2);
  });

  it('restores a version: its exact SHA-1 comes back and the replaced content stays a version', async () => {
    const a = random(500);
    const b = random(600);
    const c = random(700);
    await postForm(t, alice.headers, 'draft.md', a);
    const file = await fileNamed('draft.md');
    await davPut('draft.md', b);
    await davPut('draft.md', c);
    const before = await versionsOf(file.id);
    const first = before.find((v) => v.sha1 === sha1(a))!;
    const restored = await api('POST', `/api/files/${file.id}/versions/${first.id}/restore`);
    expect(restored.statusCode, restored.body).toBe(200);
    expect(restored.json().file).toMatchObject({ id: file.id, sha1: sha1(a), size: a.length });
    const after = await versionsOf(file.id);
    expect(after[0]).toMatchObject({ current: true, sha1: sha1(a) });
    expect(
      after
        .slice(1)
        .map((v) => v.sha1)
        .sort(),
    ).toEqual([sha1(b), sha1(c)].sort());
    const got = await t.app.inject({ url: `/dav/draft.md`, headers: basic });
    expect(got.rawPayload.equals(a)).toBe(true);
    // Unknown ids, and the current content as a version to delete.
    expect((await api('POST', `/api/files/${file.id}/versions/nope/restore`)).statusCode).toBe(404);
    const current = await api('DELETE', `/api/files/${file.id}/versions/current`);
    expect(current.statusCode).toBe(400);
  });

  it('keeps a version of every upload path that replaces: the API with onConflict, the form, tus', async () => {
    const up = uploader(t, alice.headers);
    const first = random(CHUNK + 10);
    const original = await up.upload(first, 'paths.bin');
    // The chunked API.
    const second = random(CHUNK * 2 + 3);
    const replaced = await up.upload(second, 'paths.bin', undefined, { onConflict: 'replace' });
    expect(replaced.id).toBe(original.id);
    // The known-content (instant) path.
    const again = await up.upload(first, 'paths.bin', undefined, { onConflict: 'replace' });
    expect(again).toMatchObject({ id: original.id, instant: true, sha1: sha1(first) });
    // The form.
    const third = random(300);
    const form = await postForm(t, alice.headers, 'paths.bin', third, undefined, { onConflict: 'replace' });
    expect(form.statusCode, form.body).toBe(201);
    expect(form.json().file.id).toBe(original.id);
    // tus.
    const fourth = random(CHUNK + 99);
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/tus/',
      headers: {
        ...alice.headers,
        ...TUS,
        'upload-length': String(fourth.length),
        'upload-metadata': `filename ${b64('paths.bin')},onConflict ${b64('replace')}`,
        'content-type': 'application/offset+octet-stream',
      },
      payload: fourth,
    });
    expect(created.statusCode, created.body).toBe(201);
    const items = await versionsOf(original.id);
    expect(items.map((v) => v.sha1)).toEqual([
      sha1(fourth),
      sha1(third),
      sha1(first),
      sha1(second),
      sha1(first),
    ]);
    expect(items[0]!.actor).toMatchObject({ via: 'tus' });
    // The default stays a new name; `fail` refuses a taken name at once, with nothing stored.
    const renamed = await up.upload(random(10), 'paths.bin');
    expect(renamed.name).toBe('paths (1).bin');
    const refused = await up.create({ name: 'paths.bin', size: 5, sha1: sha1('abcde'), onConflict: 'fail' });
    expect(refused.statusCode).toBe(409);
    expect(errorCode(refused)).toBe('name_conflict');
    const badRule = await postForm(t, alice.headers, 'x.bin', random(5), undefined, { onConflict: 'merge' });
    expect(badRule.statusCode).toBe(400);
    expect(badRule.json().error.message).toMatch(/onConflict/);
  });

  it('never lets the collector take a content a version holds; purging the file lets it go', async () => {
    const old = random(4000);
    await postForm(t, alice.headers, 'gc.bin', old);
    const file = await fileNamed('gc.bin');
    await davPut('gc.bin', random(4001));
    // Another file with the old bytes comes and goes for good: the version alone holds them now.
    await postForm(t, alice.headers, 'gc copy.bin', old);
    const copy = await fileNamed('gc copy.bin');
    expect((await api('DELETE', `/api/files/${copy.id}`)).statusCode).toBe(204);
    expect((await api('DELETE', `/api/trash/${copy.id}`)).statusCode).toBe(204);
    clock += 7 * 24 * 3600_000;
    expect(await collect(gcDeps())).toBe(0);
    const kept = await api('GET', `/api/files/${file.id}/versions`);
    const version = (kept.json() as { items: Version[] }).items[1]!;
    const bytes = await api('GET', `/api/files/${file.id}/versions/${version.id}/content`);
    expect(bytes.statusCode).toBe(200);
    expect(bytes.rawPayload.equals(old)).toBe(true);
    expect(await t.app.services.repos.contents.findBySha1(sha1(old))).toBeDefined();
    // Deleted for good (trash, then purge): its versions go, and their content can be collected.
    expect((await api('DELETE', `/api/files/${file.id}`)).statusCode).toBe(204);
    expect((await api('DELETE', `/api/trash/${file.id}`)).statusCode).toBe(204);
    clock += 7 * 24 * 3600_000;
    expect(await collect(gcDeps())).toBeGreaterThanOrEqual(1);
    expect(await t.app.services.repos.contents.findBySha1(sha1(old))).toBeUndefined();
  });
});
