import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

describe('share links', () => {
  let t: TestApp;
  let clock = Date.now();
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let bob: Awaited<ReturnType<TestApp['user']>>;
  const data = random(CHUNK + 100);
  let file: { id: string; sha1: string };

  const share = async (body: object = {}, who = alice) =>
    t.app.inject({
      method: 'POST',
      url: `/api/files/${file.id}/shares`,
      headers: who.headers,
      payload: body,
    });
  const pub = (token: string, headers: Record<string, string> = {}, suffix = '') =>
    t.app.inject({ url: `/api/public/shares/${token}${suffix}`, headers });

  beforeAll(async () => {
    t = await startTestApp(
      { DFS_CHUNK_SIZE: String(CHUNK), DFS_PUBLIC_URL: 'https://drive.example' },
      { now: () => clock },
    );
    alice = await t.user('alice');
    bob = await t.user('bob');
    file = await uploader(t, alice.headers).upload(data, 'shared report.pdf');
  });
  afterAll(() => t.close());

  it('creates an unguessable link that anyone can open and download', async () => {
    const res = await share();
    expect(res.statusCode).toBe(201);
    const s = res.json().share;
    expect(s).toMatchObject({ expiresAt: null, maxDownloads: null, downloads: 0, hasPassword: false });
    expect(s.token).toMatch(/^[A-Za-z0-9_-]{32,}$/);
    expect(s.url).toBe(`https://drive.example/s/${s.token}`);

    const info = await pub(s.token);
    expect(info.json()).toEqual({
      name: 'shared report.pdf',
      size: data.length,
      expiresAt: null,
      hasPassword: false,
    });
    const body = await pub(s.token, {}, '/content');
    expect(body.statusCode).toBe(200);
    expect(body.rawPayload.equals(data)).toBe(true);
    expect(body.headers['content-disposition']).toContain('attachment');
    const ranged = await pub(s.token, { range: 'bytes=0-9' }, '/content');
    expect(ranged.statusCode).toBe(206);
    expect(ranged.rawPayload.equals(data.subarray(0, 10))).toBe(true);

    const mine = (await t.app.inject({ url: '/api/shares', headers: alice.headers })).json();
    // A whole copy and a range of it: one download, not one per request.
    expect(mine.items.find((x: { token: string }) => x.token === s.token).downloads).toBe(1);
    expect((await t.app.inject({ url: '/api/shares', headers: bob.headers })).json().items).toEqual([]);
  });

  it('404s unknown and revoked links; revoking is the owner’s alone', async () => {
    const unknown = await pub('nope-not-a-token');
    expect(unknown.statusCode).toBe(404);
    // The page a visitor lands on says why the link is dead.
    expect(unknown.json().error.reason).toBe('unknown');
    const s = (await share()).json().share;
    const other = await t.app.inject({
      method: 'DELETE',
      url: `/api/shares/${s.token}`,
      headers: bob.headers,
    });
    expect(other.statusCode).toBe(404);
    const revoke = await t.app.inject({
      method: 'DELETE',
      url: `/api/shares/${s.token}`,
      headers: alice.headers,
    });
    expect(revoke.statusCode).toBe(204);
    expect((await pub(s.token)).statusCode).toBe(404);
    expect((await pub(s.token)).json().error.reason).toBe('revoked');
    expect((await pub(s.token, {}, '/content')).statusCode).toBe(404);
  });

  it('410s an expired link', async () => {
    const s = (await share({ expiresInSeconds: 60 })).json().share;
    expect(Date.parse(s.expiresAt)).toBe(clock + 60_000);
    expect((await pub(s.token)).statusCode).toBe(200);
    clock += 61_000;
    const res = await pub(s.token, {}, '/content');
    expect(res.statusCode).toBe(410);
    expect(errorCode(res)).toBe('share_expired');
    expect(res.json().error.reason).toBe('expired');
  });

  it('asks for the password in a header and checks it', async () => {
    const s = (await share({ password: 's3cret pass' })).json().share;
    expect(s.hasPassword).toBe(true);
    expect((await pub(s.token)).json().hasPassword).toBe(true);
    const none = await pub(s.token, {}, '/content');
    expect(none.statusCode).toBe(401);
    expect(errorCode(none)).toBe('share_password_required');
    const wrong = await pub(s.token, { 'x-share-password': 'guess' }, '/content');
    expect(wrong.statusCode).toBe(403);
    expect(errorCode(wrong)).toBe('share_password_invalid');
    const right = await pub(s.token, { 'x-share-password': 's3cret pass' }, '/content');
    expect(right.statusCode).toBe(200);
    expect(right.rawPayload.equals(data)).toBe(true);
  });

  it('counts downloads atomically: two racing downloads of a one-use link, one wins', async () => {
    const s = (await share({ maxDownloads: 1 })).json().share;
    const [a, b] = await Promise.all([pub(s.token, {}, '/content'), pub(s.token, {}, '/content')]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([200, 410]);
    const after = await pub(s.token);
    expect(after.statusCode).toBe(410);
    expect(after.json().error.reason).toBe('used_up');
  });

  it('stops working when the file goes to the trash', async () => {
    const s = (await share()).json().share;
    await t.app.inject({ method: 'DELETE', url: `/api/files/${file.id}`, headers: alice.headers });
    const gone = await pub(s.token, {}, '/content');
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.reason).toBe('file_gone');
    await t.app.inject({ method: 'POST', url: `/api/trash/${file.id}/restore`, headers: alice.headers });
    expect((await pub(s.token, {}, '/content')).statusCode).toBe(200);
  });

  it('validates the request body', async () => {
    for (const body of [{ maxDownloads: 0 }, { expiresInSeconds: -1 }, { password: '' }]) {
      expect((await share(body)).statusCode).toBe(400);
    }
  });
});

describe('share password guesses are rate-limited', () => {
  it('answers 429 after the limit', async () => {
    const t = await startTestApp({ DFS_SHARE_PASSWORD_RATE_LIMIT: '3' });
    try {
      const u = await t.user('carol');
      const f = await uploader(t, u.headers).upload(random(10), 'x.txt');
      const s = (
        await t.app.inject({
          method: 'POST',
          url: `/api/files/${f.id}/shares`,
          headers: u.headers,
          payload: { password: 'pw' },
        })
      ).json().share;
      const codes: number[] = [];
      for (let i = 0; i < 5; i++) {
        codes.push(
          (
            await t.app.inject({
              url: `/api/public/shares/${s.token}/content`,
              headers: { 'x-share-password': `g${i}` },
            })
          ).statusCode,
        );
      }
      expect(codes).toEqual([403, 403, 403, 429, 429]);
    } finally {
      await t.close();
    }
  });
});

describe('nodes (admin)', () => {
  it('lists storage nodes with status and usage for the admin only', async () => {
    const t = await startTestApp();
    try {
      const admin = await t.user('admin');
      const user = await t.user('plain');
      await uploader(t, admin.headers).upload(random(1000), 'n.bin');
      await uploader(t, user.headers).upload(random(2345), 'm.bin');
      const res = await t.app.inject({ url: '/api/nodes', headers: admin.headers });
      expect(res.statusCode).toBe(200);
      const [node] = res.json().items;
      // dfs's own bytes on the node, not the host disk's usage.
      expect(node).toMatchObject({ kind: 'local', status: 'up', contents: 2, storedBytes: 3345 });
      expect(Date.parse(node.lastHeartbeatAt)).toBeGreaterThan(0);
      expect(node.freeBytes).toBeGreaterThan(0);
      expect(node.name).not.toContain('password');
      expect((await t.app.inject({ url: '/api/nodes', headers: user.headers })).statusCode).toBe(403);
      expect((await t.app.inject({ url: '/api/nodes' })).statusCode).toBe(401);
    } finally {
      await t.close();
    }
  });
});
