import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { passProvider, startTestProvider, type TestProvider } from '../support/oidc-provider.ts';

const CALLBACK = 'http://dfs.test/api/auth/oidc/callback';

/**
 * Single sign-on against a real OpenID provider (panva's oidc-provider) with open sign-up: the
 * accounts it makes and links, the groups it maps, and the answers it refuses.
 */
describe('OIDC sign-in (open sign-up)', () => {
  let idp: TestProvider;
  let t: TestApp;
  let admin: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    idp = await startTestProvider([CALLBACK]);
    t = await startTestApp({
      DFS_SIGNUP: 'open',
      DFS_OIDC_ISSUER: idp.issuer,
      DFS_OIDC_CLIENT_ID: idp.clientId,
      DFS_OIDC_CLIENT_SECRET: idp.clientSecret,
      DFS_OIDC_NAME: 'Test IdP',
      DFS_OIDC_SCOPES: 'openid profile email groups',
      DFS_OIDC_GROUPS_CLAIM: 'groups',
      DFS_OIDC_REDIRECT_URL: CALLBACK,
    });
    admin = await t.user('admin'); // the first account is the admin
  });
  afterAll(async () => {
    await t?.close();
    await idp?.close();
  });

  const start = async (returnTo?: string) => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/oidc/start',
      payload: returnTo ? { returnTo } : {},
    });
    expect(res.statusCode, res.body).toBe(200);
    const state = res.cookies.find((c) => c.name === 'dfs_oidc_state')?.value;
    expect(state).toBeTruthy();
    return { url: new URL((res.json() as { url: string }).url), state: state as string };
  };
  const callback = (url: URL, state: string | undefined) =>
    t.app.inject({
      method: 'GET',
      url: `/api/auth/oidc/callback${url.search}`,
      cookies: state === undefined ? {} : { dfs_oidc_state: state },
    });
  const sessionOf = (res: LightMyRequestResponse) => res.cookies.find((c) => c.name === 'dfs_session')?.value;
  const me = async (session: string) => {
    const res = await t.app.inject({ url: '/api/auth/me', cookies: { dfs_session: session } });
    expect(res.statusCode, res.body).toBe(200);
    return (res.json() as { user: { id: string; username: string; isAdmin: boolean } }).user;
  };
  /** The whole way: start, the provider's page as `login`, the callback. */
  const signIn = async (login: string, returnTo?: string) => {
    const { url, state } = await start(returnTo);
    return callback(await passProvider(url.href, login), state);
  };
  const refusedWith = (res: LightMyRequestResponse, code: string) => {
    expect(res.statusCode, res.body).toBe(302);
    expect(res.headers.location).toBe(`/signin?ssoError=${code}`);
    expect(sessionOf(res)).toBeUndefined();
  };
  const groupsOf = async (userId: string) => {
    const ids = await t.app.services.repos.groups.groupIdsOf(userId);
    const names = [];
    for (const id of ids) names.push((await t.app.services.repos.groups.find(id))?.name);
    return names.sort();
  };
  const userCount = async () => (await t.app.services.repos.users.list(1000, 0)).total;

  it('tells the sign-in page to show the button, with the name', async () => {
    const res = await t.app.inject({ url: '/api/auth/oidc' });
    expect(res.json()).toEqual({ enabled: true, name: 'Test IdP' });
  });

  it('sends the browser to the provider with PKCE, a state and a nonce', async () => {
    const { url, state } = await start();
    expect(url.origin).toBe(idp.issuer);
    expect(url.searchParams.get('state')).toBe(state);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(url.searchParams.get('redirect_uri')).toBe(CALLBACK);
  });

  it('creates the account at the first sign-in and signs the same account in the next time', async () => {
    idp.accounts.set('sub-alice', { preferred_username: 'Alice', email: 'alice@example.org' });
    const first = await signIn('sub-alice', '/files/somewhere');
    expect(first.statusCode, first.body).toBe(302);
    expect(first.headers.location).toBe('/files/somewhere');
    const alice = await me(sessionOf(first) as string);
    expect(alice).toMatchObject({ username: 'alice', isAdmin: false });

    // Her name at the provider changes: the subject is what links her, not the name.
    idp.accounts.set('sub-alice', { preferred_username: 'alice.renamed', email: 'new@example.org' });
    const second = await signIn('sub-alice');
    expect(second.headers.location).toBe('/files');
    expect(await me(sessionOf(second) as string)).toEqual(alice);
  });

  it('sends the browser back only to a page of its own (no open redirect)', async () => {
    // Browsers drop tabs and newlines from a Location and read `\` as `/`: each is `//evil.example`.
    for (const returnTo of [
      '/\t/evil.example',
      '/\n/evil.example',
      '/\r\n/evil.example',
      '/\t\\evil.example',
    ]) {
      const res = await t.app.inject({ method: 'POST', url: '/api/auth/oidc/start', payload: { returnTo } });
      expect(res.statusCode, JSON.stringify(returnTo)).toBe(400);
      expect(res.cookies.find((c) => c.name === 'dfs_oidc_state')).toBeUndefined();
    }
    idp.accounts.set('sub-olga', { preferred_username: 'olga' });
    const res = await signIn('sub-olga', '/files/a%20b?view=grid#top');
    expect(res.headers.location).toBe('/files/a%20b?view=grid#top');
  });

  it('never signs into a local account that merely has the same name', async () => {
    const local = await t.user('bob');
    idp.accounts.set('sub-bob', { preferred_username: 'bob' });
    const res = await signIn('sub-bob');
    const bob = await me(sessionOf(res) as string);
    expect(bob.id).not.toBe(local.id);
    expect(bob.username).toBe('bob-2');
  });

  it('names an account after the email, else the subject, when the provider gives no username', async () => {
    idp.accounts.set('sub-carol', { email: 'Carol.Smith@example.org' });
    expect((await me(sessionOf(await signIn('sub-carol')) as string)).username).toBe('carol.smith');
    expect((await me(sessionOf(await signIn('d4c7a9e1-only-a-subject')) as string)).username).toBe(
      'd4c7a9e1-only-a-subject',
    );
  });

  it('counts the sign-in as two factors (the provider owns them)', async () => {
    const res = await signIn('sub-alice');
    const alice = await me(sessionOf(res) as string);
    const sessions = await t.app.services
      .db('sessions')
      .where({ user_id: alice.id })
      .select('second_factor_at');
    expect(sessions.length).toBeGreaterThan(0);
    for (const s of sessions) expect(s.second_factor_at).not.toBeNull();
  });

  it('maps the groups claim to dfs groups at each sign-in, keeping memberships an admin gave', async () => {
    idp.accounts.set('sub-dave', { preferred_username: 'dave', groups: ['Family', 'team'] });
    const dave = await me(sessionOf(await signIn('sub-dave')) as string);
    expect(await groupsOf(dave.id)).toEqual(['Family', 'team']);
    const family = await t.app.services.repos.groups.findByName('Family');
    expect(family?.source).toBe('oidc');

    const { repos } = t.app.services;
    await repos.groups.insert({ id: 'local-club-id', name: 'club', source: 'local', created_at: Date.now() });
    await repos.groups.addMember({
      group_id: 'local-club-id',
      user_id: dave.id,
      source: 'local',
      created_at: 1,
    });

    idp.accounts.set('sub-dave', { preferred_username: 'dave', groups: ['team', 'club'] });
    await signIn('sub-dave');
    expect(await groupsOf(dave.id)).toEqual(['club', 'team']);
    idp.accounts.set('sub-dave', { preferred_username: 'dave' });
    await signIn('sub-dave');
    // The provider no longer lists any group: its memberships go, the admin's stays.
    expect(await groupsOf(dave.id)).toEqual(['club']);
  });

  it('refuses a callback whose state was tampered with, and spends the sign-in', async () => {
    idp.accounts.set('sub-erin', { preferred_username: 'erin' });
    const before = await userCount();
    const { url, state } = await start();
    const back = await passProvider(url.href, 'sub-erin');
    const forged = new URL(back);
    forged.searchParams.set('state', 'A'.repeat(43));
    refusedWith(await callback(forged, state), 'oidc_failed');
    // The genuine answer cannot be used after a failed try either.
    refusedWith(await callback(back, state), 'oidc_failed');
    expect(await userCount()).toBe(before);
  });

  it('refuses a callback in a browser that did not start the sign-in (login CSRF)', async () => {
    const { url } = await start();
    const back = await passProvider(url.href, 'sub-erin');
    refusedWith(await callback(back, undefined), 'oidc_failed');
  });

  it('refuses a replayed callback', async () => {
    const { url, state } = await start();
    const back = await passProvider(url.href, 'sub-alice');
    expect(sessionOf(await callback(back, state))).toBeTruthy();
    refusedWith(await callback(back, state), 'oidc_failed');
  });

  it('refuses an ID token that carries another nonce than the one dfs sent', async () => {
    const before = await userCount();
    const { url, state } = await start();
    // The provider is asked for another nonce than the one dfs keeps for this sign-in.
    url.searchParams.set('nonce', 'nonce-of-another-sign-in-000000000000');
    refusedWith(await callback(await passProvider(url.href, 'sub-erin'), state), 'oidc_failed');
    expect(await userCount()).toBe(before);
  });

  it('refuses a user whose account is disabled, and lets them in once enabled', async () => {
    idp.accounts.set('sub-frank', { preferred_username: 'frank' });
    const frank = await me(sessionOf(await signIn('sub-frank')) as string);
    await t.app.services.db('users').where({ id: frank.id }).update({ disabled_at: Date.now() });
    refusedWith(await signIn('sub-frank'), 'account_disabled');
    await t.app.services.db('users').where({ id: frank.id }).update({ disabled_at: null });
    expect((await me(sessionOf(await signIn('sub-frank')) as string)).id).toBe(frank.id);
  });

  it('lets an admin list and remove the link: the person then gets a new account', async () => {
    const dave = (await t.app.services.repos.users.findByUsername('dave')) as { id: string };
    const list = await t.app.inject({
      url: `/api/admin/users/${dave.id}/identities`,
      headers: admin.headers,
    });
    expect(list.statusCode, list.body).toBe(200);
    const items = (
      list.json() as { items: { id: string; provider: string; issuer: string; subject: string }[] }
    ).items;
    expect(items).toEqual([
      expect.objectContaining({ provider: 'oidc', issuer: idp.issuer, subject: 'sub-dave' }),
    ]);
    const removed = await t.app.inject({
      method: 'DELETE',
      url: `/api/admin/users/${dave.id}/identities/${items[0]?.id}`,
      headers: admin.headers,
    });
    expect(removed.statusCode).toBe(204);
    const again = await me(sessionOf(await signIn('sub-dave')) as string);
    expect(again.id).not.toBe(dave.id);
  });
});
