import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';

describe('accounts', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ DFS_SIGNIN_RATE_LIMIT: '5' });
  });
  afterAll(() => t.close());

  const post = (url: string, payload?: object, headers?: Record<string, string>) =>
    t.app.inject({ method: 'POST', url, payload, headers });

  it('signs up the first account as admin and later ones as plain users', async () => {
    const first = await post('/api/auth/signup', { username: 'Alice', password: 'password-1' });
    expect(first.statusCode).toBe(201);
    const user = first.json().user;
    expect(user).toMatchObject({ username: 'alice', isAdmin: true });
    expect(new Date(user.createdAt).toISOString()).toBe(user.createdAt);
    expect(user).not.toHaveProperty('password_hash');

    const second = await post('/api/auth/signup', { username: 'bob', password: 'password-2' });
    expect(second.statusCode).toBe(201);
    expect(second.json().user.isAdmin).toBe(false);
  });

  it('refuses a taken username, case-insensitively', async () => {
    const res = await post('/api/auth/signup', { username: 'ALICE', password: 'another-password' });
    expect(res.statusCode).toBe(409);
    expect(errorCode(res)).toBe('username_taken');
  });

  it.each([
    [{ username: 'carol', password: 'short' }, 'bad_request'],
    [{ username: 'carol', password: 'carolxyz' }, undefined],
    [{ username: 'a/b', password: 'long enough' }, 'bad_request'],
    [{ username: 'carol' }, 'bad_request'],
    [{ username: 'x', password: 'long enough' }, 'bad_request'],
  ])('rejects weak or invalid input %j', async (payload, code) => {
    const res = await post('/api/auth/signup', payload);
    if (code === undefined) {
      expect(res.statusCode).toBe(201);
      return;
    }
    expect(res.statusCode).toBe(400);
    expect(errorCode(res)).toBe(code);
    expect(res.json().error.message).toEqual(expect.any(String));
  });

  it('refuses a password equal to the username', async () => {
    const res = await post('/api/auth/signup', { username: 'dave12345', password: 'DAVE12345' });
    expect(res.statusCode).toBe(400);
    expect(errorCode(res)).toBe('weak_password');
  });

  it('signs in with a cookie and a token, both accepted by /me', async () => {
    const res = await post('/api/auth/signin', { username: 'alice', password: 'password-1' });
    expect(res.statusCode).toBe(200);
    const { token, user } = res.json();
    expect(user.username).toBe('alice');
    expect(token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    const setCookie = String(res.headers['set-cookie']);
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Lax');
    const cookieValue = setCookie.split(';')[0] ?? '';

    const viaBearer = await t.app.inject({
      url: '/api/auth/me',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(viaBearer.statusCode).toBe(200);
    expect(viaBearer.json().user.username).toBe('alice');
    const viaCookie = await t.app.inject({ url: '/api/auth/me', headers: { cookie: cookieValue } });
    expect(viaCookie.json().user.username).toBe('alice');
  });

  it('answers a wrong password and an unknown user alike', async () => {
    const wrong = await post('/api/auth/signin', { username: 'bob', password: 'not-the-password' });
    const unknown = await post('/api/auth/signin', { username: 'nobody', password: 'not-the-password' });
    for (const res of [wrong, unknown]) {
      expect(res.statusCode).toBe(401);
      expect(errorCode(res)).toBe('invalid_credentials');
    }
    expect(wrong.json().error.message).toBe(unknown.json().error.message);
  });

  it('needs a session for /me and rejects a forged token', async () => {
    expect((await t.app.inject({ url: '/api/auth/me' })).statusCode).toBe(401);
    const forged = await t.app.inject({ url: '/api/auth/me', headers: { authorization: 'Bearer forged' } });
    expect(forged.statusCode).toBe(401);
    expect(errorCode(forged)).toBe('unauthorized');
  });

  it('revokes the session server-side on signout', async () => {
    const { token } = (await post('/api/auth/signin', { username: 'bob', password: 'password-2' })).json();
    const headers = { authorization: `Bearer ${token}` };
    const out = await post('/api/auth/signout', undefined, headers);
    expect(out.statusCode).toBe(204);
    expect((await t.app.inject({ url: '/api/auth/me', headers })).statusCode).toBe(401);
  });

  it('rate-limits sign-in attempts per name', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 7; i++) {
      codes.push(
        (await post('/api/auth/signin', { username: 'ratelimited', password: 'whatever-pw' })).statusCode,
      );
    }
    expect(codes.slice(0, 5).every((c) => c === 401)).toBe(true);
    expect(codes.at(-1)).toBe(429);
    const limited = await post('/api/auth/signin', { username: 'ratelimited', password: 'whatever-pw' });
    expect(errorCode(limited)).toBe('rate_limited');
  });

  it('serves health, readiness and the OpenAPI document', async () => {
    expect((await t.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    const ready = await t.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json().liveNodes).toBe(1);
    const doc = (await t.app.inject({ url: '/api/openapi.json' })).json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toContain('/api/auth/signin');
  });

  it('refuses an oversize JSON body with 413 before parsing it', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/signup',
      payload: JSON.stringify({ username: 'big', password: 'x'.repeat(2 * 1024 * 1024) }),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.statusCode).toBe(413);
    expect(errorCode(res)).toBe('payload_too_large');
  });

  it('answers unknown routes and malformed JSON with JSON errors', async () => {
    const missing = await t.app.inject({ url: '/api/nope' });
    expect(missing.statusCode).toBe(404);
    expect(errorCode(missing)).toBe('not_found');
    const bad = await t.app.inject({
      method: 'POST',
      url: '/api/auth/signin',
      payload: '{"username":',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.statusCode).toBe(400);
    expect(errorCode(bad)).toBe('bad_request');
  });
});

describe('passwords: a change by the user, a reset by an admin', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ DFS_SIGNIN_RATE_LIMIT: '100' });
  });
  afterAll(() => t.close());

  const signin = async (username: string, password: string) => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/signin',
      payload: { username, password },
    });
    return { status: res.statusCode, headers: { authorization: `Bearer ${res.json().token}` } };
  };
  const me = async (headers: Record<string, string>) =>
    (await t.app.inject({ url: '/api/auth/me', headers })).statusCode;
  const change = (headers: Record<string, string>, payload: object) =>
    t.app.inject({ method: 'POST', url: '/api/auth/password', headers, payload });
  const reset = (headers: Record<string, string>, id: string, payload: object) =>
    t.app.inject({ method: 'POST', url: `/api/admin/users/${id}/password`, headers, payload });

  it('changes the password with the current one, ends the other sessions and keeps app passwords', async () => {
    const admin = await t.user('root');
    const carol = await t.user('carol', 'first-password');
    const laptop = await signin('carol', 'first-password');
    const app = await t.appPassword(carol.headers, 'sync');
    expect(await me(laptop.headers)).toBe(200);

    const wrong = await change(carol.headers, {
      currentPassword: 'not-it-at-all',
      newPassword: 'second-password',
    });
    expect(wrong.statusCode).toBe(403);
    expect(errorCode(wrong)).toBe('wrong_password');
    const weak = await change(carol.headers, { currentPassword: 'first-password', newPassword: 'short' });
    expect(weak.statusCode).toBe(400);
    const named = await change(carol.headers, { currentPassword: 'first-password', newPassword: 'CAROL' });
    expect(named.statusCode).toBe(400);
    expect((await signin('carol', 'first-password')).status).toBe(200);

    const done = await change(carol.headers, {
      currentPassword: 'first-password',
      newPassword: 'second-password',
    });
    expect(done.statusCode).toBe(204);
    // The asking session stays; the laptop's is over; the app password still works.
    expect(await me(carol.headers)).toBe(200);
    expect(await me(laptop.headers)).toBe(401);
    expect(await me({ authorization: `Bearer ${app}` })).toBe(200);
    expect((await signin('carol', 'first-password')).status).toBe(401);
    expect((await signin('carol', 'second-password')).status).toBe(200);
    // Nobody else's sessions are touched.
    expect(await me(admin.headers)).toBe(200);
  });

  it('takes no change from an app password, no session, or extra fields', async () => {
    const dave = await t.user('dave', 'dave-password');
    const app = await t.appPassword(dave.headers, 'script');
    const body = { currentPassword: 'dave-password', newPassword: 'taken-over-pw' };
    const byApp = await change({ authorization: `Bearer ${app}` }, body);
    expect(byApp.statusCode).toBe(403);
    expect((await change({}, body)).statusCode).toBe(401);
    expect((await change(dave.headers, { ...body, isAdmin: true })).statusCode).toBe(400);
    expect((await signin('dave', 'dave-password')).status).toBe(200);
  });

  it('lets an admin reset a password: every session of that user ends, app passwords stay', async () => {
    const admin = await signin('root', 'correct horse battery');
    const erin = await t.user('erin', 'erin-password');
    const other = await signin('erin', 'erin-password');
    const app = await t.appPassword(erin.headers, 'phone');

    // Not for users who are not admins, nor for an admin's app password.
    const byUser = await reset(other.headers, erin.id, { newPassword: 'by-erin-self' });
    expect(byUser.statusCode).toBe(403);
    const adminApp = await t.appPassword(admin.headers, 'admin script');
    expect(
      (await reset({ authorization: `Bearer ${adminApp}` }, erin.id, { newPassword: 'x-password' }))
        .statusCode,
    ).toBe(403);
    expect((await reset(admin.headers, 'no-such-user', { newPassword: 'new-password' })).statusCode).toBe(
      404,
    );
    expect((await reset(admin.headers, erin.id, { newPassword: 'short' })).statusCode).toBe(400);
    expect((await reset(admin.headers, erin.id, {})).statusCode).toBe(400);

    const res = await reset(admin.headers, erin.id, { newPassword: 'reset-by-admin' });
    expect(res.statusCode).toBe(204);
    expect(await me(erin.headers)).toBe(401);
    expect(await me(other.headers)).toBe(401);
    expect(await me({ authorization: `Bearer ${app}` })).toBe(200);
    expect(await me(admin.headers)).toBe(200);
    expect((await signin('erin', 'erin-password')).status).toBe(401);
    expect((await signin('erin', 'reset-by-admin')).status).toBe(200);
  });

  it('keeps the asking session when an admin resets their own password', async () => {
    const admin = await signin('root', 'correct horse battery');
    const elsewhere = await signin('root', 'correct horse battery');
    const me1 = (await t.app.inject({ url: '/api/auth/me', headers: admin.headers })).json().user;
    expect((await reset(admin.headers, me1.id, { newPassword: 'new-root-password' })).statusCode).toBe(204);
    expect(await me(admin.headers)).toBe(200);
    expect(await me(elsewhere.headers)).toBe(401);
  });
});
