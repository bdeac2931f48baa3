import { createServer } from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { passProvider, startTestProvider, type TestProvider } from '../support/oidc-provider.ts';

const CALLBACK = 'http://dfs.test/api/auth/oidc/callback';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Single sign-on on a server where only admins make accounts and everyone needs two factors, and
 * with a provider that is down when dfs starts.
 */
describe('OIDC sign-in (closed sign-up, provider down at boot)', () => {
  let port: number;
  let idp: TestProvider | undefined;
  let t: TestApp;
  let admin: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    port = await freePort();
    // Nothing listens on the issuer's port yet: dfs must start anyway.
    t = await startTestApp({
      DFS_SIGNUP: 'closed',
      // The provider owns the second factor: its sign-ins pass the requirement.
      DFS_REQUIRE_2FA: 'true',
      DFS_OIDC_ISSUER: `http://127.0.0.1:${port}`,
      DFS_OIDC_CLIENT_ID: 'dfs-test',
      DFS_OIDC_CLIENT_SECRET: 'dfs-test-secret-0123456789abcdef',
      DFS_OIDC_NAME: 'Test IdP',
      DFS_OIDC_REDIRECT_URL: CALLBACK,
    });
    admin = await t.user('admin'); // the first account can always sign up
    // The admin's own second factor, without which DFS_REQUIRE_2FA leaves it only that to do.
    const setup = await t.app.inject({
      method: 'POST',
      url: '/api/auth/totp',
      headers: admin.headers,
      payload: { password: 'correct horse battery' },
    });
    expect(setup.statusCode, setup.body).toBe(201);
    const { secret } = setup.json() as { secret: string };
    const code = new TOTP({ secret: Secret.fromBase32(secret) }).generate();
    const confirmed = await t.app.inject({
      method: 'POST',
      url: '/api/auth/totp/confirm',
      headers: admin.headers,
      payload: { code },
    });
    expect(confirmed.statusCode, confirmed.body).toBe(204);
  });
  afterAll(async () => {
    await t?.close();
    await idp?.close();
  });

  const start = () => t.app.inject({ method: 'POST', url: '/api/auth/oidc/start', payload: {} });
  const sessionOf = (res: LightMyRequestResponse) => res.cookies.find((c) => c.name === 'dfs_session')?.value;
  const signIn = async (login: string) => {
    const res = await start();
    expect(res.statusCode, res.body).toBe(200);
    const state = res.cookies.find((c) => c.name === 'dfs_oidc_state')?.value as string;
    const back = await passProvider((res.json() as { url: string }).url, login);
    return t.app.inject({
      url: `/api/auth/oidc/callback${back.search}`,
      cookies: { dfs_oidc_state: state },
    });
  };

  it('starts without the provider and answers a clear 503 while it is down', async () => {
    expect((await t.app.inject({ url: '/api/auth/oidc' })).json()).toEqual({
      enabled: true,
      name: 'Test IdP',
    });
    const res = await start();
    expect(res.statusCode).toBe(503);
    expect(errorCode(res)).toBe('oidc_unavailable');
    // Password sign-in is not held up by it (it asks for the admin's code, as ever).
    const signin = await t.app.inject({
      method: 'POST',
      url: '/api/auth/signin',
      payload: { username: 'admin', password: 'correct horse battery' },
    });
    expect(errorCode(signin)).toBe('totp_required');
  });

  it('discovers the provider once it is up', async () => {
    idp = await startTestProvider([CALLBACK], port);
    expect((await start()).statusCode).toBe(200);
  });

  it('refuses to make an account for an unknown person, and makes nothing', async () => {
    const before = (await t.app.services.repos.users.list(100, 0)).total;
    const res = await signIn('sub-gina');
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/signin?ssoError=signup_closed');
    expect(sessionOf(res)).toBeUndefined();
    expect((await t.app.services.repos.users.list(100, 0)).total).toBe(before);
  });

  it('signs a person into the account an admin made and linked to their subject', async () => {
    idp?.accounts.set('sub-gina', { preferred_username: 'gina-at-the-provider' });
    const made = await t.app.inject({
      method: 'POST',
      url: '/api/admin/users',
      headers: admin.headers,
      payload: { username: 'gina', password: 'a long enough password' },
    });
    expect(made.statusCode, made.body).toBe(201);
    const gina = (made.json() as { user: { id: string } }).user;
    const link = (subject: string) =>
      t.app.inject({
        method: 'POST',
        url: `/api/admin/users/${gina.id}/identities`,
        headers: admin.headers,
        payload: { subject },
      });
    const linked = await link('sub-gina');
    expect(linked.statusCode, linked.body).toBe(201);
    expect((linked.json() as { identity: unknown }).identity).toMatchObject({
      provider: 'oidc',
      issuer: `http://127.0.0.1:${port}`,
      subject: 'sub-gina',
      lastUsedAt: null,
    });
    // One person, one account.
    const twice = await link('sub-gina');
    expect(twice.statusCode).toBe(409);
    expect(errorCode(twice)).toBe('identity_linked');

    const res = await signIn('sub-gina');
    expect(res.headers.location).toBe('/files');
    const me = await t.app.inject({
      url: '/api/auth/me',
      cookies: { dfs_session: sessionOf(res) as string },
    });
    expect((me.json() as { user: { id: string; username: string } }).user).toMatchObject({
      id: gina.id,
      username: 'gina',
    });
  });

  it('counts the provider sign-in as two factors where they are required, app passwords included', async () => {
    const res = await signIn('sub-gina');
    const cookies = { dfs_session: sessionOf(res) as string };
    const files = await t.app.inject({ url: '/api/files', cookies });
    expect(files.statusCode, files.body).toBe(200);
    const made = await t.app.inject({
      method: 'POST',
      url: '/api/auth/app-passwords',
      cookies,
      payload: { name: 'laptop' },
    });
    expect(made.statusCode, made.body).toBe(201);
    const { secret } = made.json() as { secret: string };
    const dav = await t.app.inject({
      method: 'PROPFIND',
      url: '/dav/',
      headers: { authorization: `Basic ${Buffer.from(`gina:${secret}`).toString('base64')}`, depth: '0' },
    });
    expect(dav.statusCode, dav.body).toBe(207);
  });

  it('is refused to users who are not admins', async () => {
    const login = await t.app.inject({
      method: 'POST',
      url: '/api/auth/signin',
      payload: { username: 'gina', password: 'a long enough password' },
    });
    const { token } = login.json() as { token: string };
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/admin/users/whoever/identities',
      headers: { authorization: `Bearer ${token}` },
      payload: { subject: 'sub-x' },
    });
    expect(res.statusCode).toBe(403);
  });
});
