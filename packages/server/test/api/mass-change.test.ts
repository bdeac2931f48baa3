import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random, sha1 } from '../support/bytes.ts';
import { type Entry, treeClient } from '../support/tree.ts';
import { postBatchForm, postForm } from '../support/uploads.ts';

describe('the mass-change guard and a ransomware drill', () => {
  let t: TestApp;
  let clock = Date.parse('2026-11-02T08:00:00Z');
  let alice: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    t = await startTestApp({}, { now: () => clock });
    alice = await t.user('alice');
  });
  afterAll(() => t.close());

  const { api, folder, list, tree } = treeClient(
    () => t,
    () => alice,
  );

  it('raises one alert naming the app password, and one restore brings every file back', async () => {
    // 300 files in a nested tree: Work/{a,b,c}/{x,y}, 50 each.
    const work = await folder('Work');
    const paths: string[] = [];
    for (const top of ['a', 'b', 'c']) {
      const f = await folder(top, work.id);
      for (const leaf of ['x', 'y']) {
        const l = await folder(leaf, f.id);
        const items = Array.from({ length: 50 }, (_, i) => ({
          name: `doc-${i}.txt`,
          data: random(64 + i),
          parentId: l.id,
        }));
        const res = await postBatchForm(t, alice.headers, items);
        expect(res.statusCode, res.body).toBe(201);
        paths.push(...items.map((item) => `Work/${top}/${leaf}/${item.name}`));
      }
    }
    const before = await tree();
    expect(Object.values(before).filter((sha1) => sha1 !== null)).toHaveLength(300);
    clock += 60_000;

    // The attack, through WebDAV with an app password: 200 overwritten, 50 renamed, 50 trashed.
    const secret = await t.appPassword(alice.headers, 'Office PC');
    const basic = { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}` };
    const dav = (method: string, path: string, extra: Record<string, string> = {}, payload?: Buffer) =>
      t.app.inject({
        method: method as 'PUT',
        url: `/dav/${path.split('/').map(encodeURIComponent).join('/')}`,
        headers: { ...basic, ...extra },
        ...(payload ? { payload } : {}),
      });
    const encrypted = new Map<string, string>();
    for (const [i, path] of paths.entries()) {
      if (i % 3 !== 2 && encrypted.size < 200) {
        const junk = random(80);
        expect((await dav('PUT', path, {}, junk)).statusCode).toBe(204);
        encrypted.set(path, sha1(junk));
      }
      clock += 5;
    }
    const rest = paths.filter((p) => !encrypted.has(p));
    for (const path of rest.slice(0, 50)) {
      const res = await dav('MOVE', path, { destination: `/dav/${path}.locked` });
      expect(res.statusCode, res.body).toBe(201);
      clock += 5;
    }
    for (const path of rest.slice(50)) {
      expect((await dav('DELETE', path)).statusCode).toBe(204);
      clock += 5;
    }
    expect(Object.keys(await tree()).filter((p) => p.endsWith('.locked'))).toHaveLength(50);
    clock += 1_000;

    const alerts = await api('GET', '/api/alerts');
    expect(alerts.statusCode).toBe(200);
    const items = alerts.json().items;
    expect(items).toHaveLength(1);
    const [alert] = items;
    expect(alert).toMatchObject({
      kind: 'mass_change',
      actor: { type: 'app_password', name: 'Office PC' },
      files: 300,
      folderId: work.id,
      folderPath: '/Work',
    });
    expect(alert.actor.appPasswordId).toBeTruthy();
    expect(Date.parse(alert.restoreAt)).toBeLessThan(Date.parse(alert.at));
    // The audit log has it too, raised by dfs (no actor), naming whose files and which door.
    const audited = await t.app.services.audit.page({ action: 'mass_change.alert' });
    expect(audited.events).toHaveLength(1);
    expect(audited.events[0]).toMatchObject({
      actorId: null,
      targetType: 'user',
      targetId: alice.id,
      // As many files as when it was raised; the alert itself keeps counting.
      details: { files: expect.any(Number), by: 'alice', actorType: 'app_password', via: 'webdav' },
    });

    // The app password cannot hide its tracks or undo for the owner.
    const bearer = { authorization: `Bearer ${secret}` };
    expect(errorCode(await api('DELETE', `/api/alerts/${alert.id}`, undefined, bearer))).toBe('forbidden');
    expect(errorCode(await api('POST', `/api/alerts/${alert.id}/undo`, undefined, bearer))).toBe('forbidden');

    const undo = await api('POST', `/api/alerts/${alert.id}/undo`);
    expect(undo.statusCode, undo.body).toBe(200);
    expect(undo.json()).toEqual({ restored: 300, trashed: 0, unchanged: 0, unavailable: 0 });
    const restores = (await t.app.services.audit.page({ action: 'restore.started' })).events;
    expect(restores).toMatchObject([
      { actorUsername: 'alice', targetType: 'folder', targetId: work.id, details: { entries: 300 } },
    ]);
    expect(await tree()).toEqual(before);
    // The random versions stay available.
    const one = (await list((await list((await list(work.id))[0]!.id))[0]!.id))[0]!;
    const versions = (await api('GET', `/api/files/${one.id}/versions`)).json().items as Entry[];
    expect(versions.map((v) => v.sha1)).toContain(encrypted.get(`Work/a/x/${one.name}`));
    // Undone: no alert left, and the restore's own 300 changes raised none.
    expect((await api('GET', '/api/alerts')).json().items).toEqual([]);
    // The app password is revoked from the alert's actor.
    expect((await api('DELETE', `/api/auth/app-passwords/${alert.actor.appPasswordId}`)).statusCode).toBe(
      204,
    );
    expect((await dav('PROPFIND', 'Work', { depth: '0' })).statusCode).toBe(401);
    // 600 writes and a restore: minutes on a loaded 2-core machine running MariaDB beside it.
  }, 180_000);

  it('leaves a burst under the threshold alone, and dismissing keeps the changes', async () => {
    const quiet = await folder('Quiet');
    const alertsHere = async () =>
      ((await api('GET', '/api/alerts')).json().items as Array<{ id: string; folderId: string }>).filter(
        (a) => a.folderId === quiet.id,
      );
    // A batch takes at most 100 files.
    const ids: string[] = [];
    for (const names of [Array.from({ length: 100 }, (_, i) => `n${i}`), ['n100']]) {
      const made = await postBatchForm(
        t,
        alice.headers,
        names.map((name) => ({ name, data: random(10), parentId: quiet.id })),
      );
      expect(made.statusCode, made.body).toBe(201);
      ids.push(...(made.json().files as Array<{ id: string }>).map((f) => f.id));
    }
    clock += 10 * 60_000;
    for (const id of ids.slice(0, 100)) await api('PATCH', `/api/files/${id}`, { name: `${id}.renamed` });
    expect(await alertsHere()).toEqual([]);
    await api('PATCH', `/api/files/${ids[100]}`, { name: 'the-101st' });
    const [alert] = await alertsHere();
    expect(alert).toMatchObject({ files: 101, actor: { type: 'session' }, folderId: quiet.id });
    expect((await api('DELETE', `/api/alerts/${alert!.id}`)).statusCode).toBe(204);
    expect(await alertsHere()).toEqual([]);
    expect((await list(quiet.id)).filter((e) => e.name.endsWith('.renamed'))).toHaveLength(100);
    expect((await api('POST', `/api/alerts/${alert!.id}/undo`)).statusCode).toBe(404);
  });

  it('keeps history pages complete and in order with writers on two app instances', async () => {
    const second = await buildApp(t.config, { logger: { level: 'silent' }, now: () => clock });
    try {
      const shared = await folder('Shared');
      const write = async (app: typeof second, name: string) => {
        const made = await postForm({ ...t, app }, alice.headers, name, random(16), shared.id);
        expect(made.statusCode).toBe(201);
        const id = made.json().file.id as string;
        const renamed = await app.inject({
          method: 'PATCH',
          url: `/api/files/${id}`,
          headers: alice.headers,
          payload: { name: `${name}.v2` },
        });
        expect(renamed.statusCode).toBe(200);
        return id;
      };
      const ids = await Promise.all(
        Array.from({ length: 60 }, (_, i) => write(i % 2 === 0 ? t.app : second, `w${i}`)),
      );
      const seen: Array<{ id: string; action: string; fileId: string }> = [];
      let cursor: string | null = null;
      do {
        const res = await api(
          'GET',
          `/api/history?folderId=${shared.id}&limit=17${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(res.statusCode).toBe(200);
        const page = res.json() as { items: typeof seen; nextCursor: string | null };
        seen.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      // Every change once (the folder's own creation too), newest first, and each file's rename after its creation.
      expect(seen).toHaveLength(121);
      const seqs = seen.map((e) => Number(e.id));
      expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
      expect(new Set(seqs).size).toBe(121);
      for (const id of ids) {
        const mine = seen.filter((e) => e.fileId === id).map((e) => e.action);
        expect(mine).toEqual(['renamed', 'created']);
      }
    } finally {
      await second.close();
    }
  });
});
