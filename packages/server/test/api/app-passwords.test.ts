import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';

describe('app passwords', () => {
  let t: TestApp;
  let clock = Date.now();
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let bob: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    t = await startTestApp({}, { now: () => clock });
    alice = await t.user('alice');
    bob = await t.user('bob');
  });
  afterAll(() => t.close());

  const create = (name: string, headers = alice.headers) =>
    t.app.inject({ method: 'POST', url: '/api/auth/app-passwords', headers, payload: { name } });
  const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

  it('gives the secret once, keeps only its hash, and lets a program in with it as a Bearer token', async () => {
    const res = await create('laptop rclone');
    expect(res.statusCode).toBe(201);
    const { appPassword, secret } = res.json();
    expect(secret).toMatch(/^dfsapp_[A-Za-z0-9_-]{40,}$/);
    expect(appPassword).toMatchObject({ name: 'laptop rclone', lastUsedAt: null });
    const rows = await t.app.services.db('app_passwords').select('*');
    expect(JSON.stringify(rows)).not.toContain(secret);

    const list = (await t.app.inject({ url: '/api/auth/app-passwords', headers: alice.headers })).json();
    expect(list.items).toEqual([appPassword]);
    expect(JSON.stringify(list)).not.toContain(secret);

    clock += 5_000;
    const me = await t.app.inject({ url: '/api/auth/me', headers: bearer(secret) });
    expect(me.statusCode).toBe(200);
    expect(me.json().user.username).toBe('alice');
    const after = (await t.app.inject({ url: '/api/auth/app-passwords', headers: alice.headers })).json();
    expect(Date.parse(after.items[0].lastUsedAt)).toBe(Math.floor(clock));
  });

  it('cannot manage app passwords with an app password', async () => {
    const { secret } = (await create('script')).json();
    const made = await create('another', bearer(secret));
    expect(made.statusCode).toBe(403);
    expect(errorCode(made)).toBe('forbidden');
    expect((await t.app.inject({ url: '/api/auth/app-passwords', headers: bearer(secret) })).statusCode).toBe(
      403,
    );
  });

  it('stops working the moment it is revoked; only its owner can revoke it', async () => {
    const { appPassword, secret } = (await create('old phone')).json();
    const foreign = await t.app.inject({
      method: 'DELETE',
      url: `/api/auth/app-passwords/${appPassword.id}`,
      headers: bob.headers,
    });
    expect(foreign.statusCode).toBe(404);
    expect((await t.app.inject({ url: '/api/files', headers: bearer(secret) })).statusCode).toBe(200);
    const gone = await t.app.inject({
      method: 'DELETE',
      url: `/api/auth/app-passwords/${appPassword.id}`,
      headers: alice.headers,
    });
    expect(gone.statusCode).toBe(204);
    expect((await t.app.inject({ url: '/api/files', headers: bearer(secret) })).statusCode).toBe(401);
  });

  it('takes HTTP Basic with the username and an app password, never the account password', async () => {
    const { secret } = (await create('webdav')).json();
    const auth = t.app.services.auth;
    expect((await auth.authenticateBasic('alice', secret))?.user.username).toBe('alice');
    expect((await auth.authenticateBasic('ALICE', secret))?.user.username).toBe('alice');
    expect(await auth.authenticateBasic('bob', secret)).toBeNull();
    expect(await auth.authenticateBasic('alice', 'correct horse battery')).toBeNull();
    // Basic is for /dav/ only: the JSON API does not take it.
    const basic = `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}`;
    expect((await t.app.inject({ url: '/api/files', headers: { authorization: basic } })).statusCode).toBe(
      401,
    );
  });

  it('carries the user role only: an admin’s app password administers nothing', async () => {
    // alice signed up first: she is the admin, and her session administers.
    const { secret } = (await create('sync client')).json();
    const asAdmin = await t.app.inject({ url: '/api/admin/users', headers: alice.headers });
    expect(asAdmin.statusCode).toBe(200);
    await t.app.ready();
    const doc = t.app.swagger() as { paths: Record<string, Record<string, unknown>> };
    const adminRoutes = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith('/api/admin/') || path.startsWith('/api/nodes'))
      .flatMap(([path, methods]) =>
        Object.keys(methods)
          .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
          .map((m) => ({ method: m.toUpperCase() as 'GET', url: path.replace(/\{[^}]+\}/g, bob.id) })),
      );
    expect(adminRoutes.length).toBeGreaterThan(5);
    const answered: string[] = [];
    for (const route of adminRoutes) {
      const res = await t.app.inject({
        ...route,
        headers: bearer(secret),
        ...(route.method === 'GET' ? {} : { payload: {} }),
      });
      if (res.statusCode !== 403 || errorCode(res) !== 'forbidden')
        answered.push(`${route.method} ${route.url} → ${res.statusCode}`);
    }
    expect(answered).toEqual([]);
    const made = await t.app.inject({
      method: 'POST',
      url: '/api/admin/users',
      headers: bearer(secret),
      payload: { username: 'mallory', password: 'mallory-password', isAdmin: true },
    });
    expect(made.statusCode).toBe(403);
    expect(await t.app.services.repos.users.findByUsername('mallory')).toBeUndefined();
    const me = (await t.app.inject({ url: '/api/auth/me', headers: bearer(secret) })).json();
    expect(me.user).toMatchObject({ username: 'alice', isAdmin: false });
  });

  it('validates the name', async () => {
    expect((await create('')).statusCode).toBe(400);
    expect((await create('x'.repeat(101))).statusCode).toBe(400);
  });
});
