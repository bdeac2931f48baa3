import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';

const PASSWORD = 'correct horse battery';
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
const SAFARI =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1';

const codeAt = (secret: string, at: number) =>
  new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({
    timestamp: at,
  });

/** Sessions the user can see and end, app-password scopes, and an admin's two-factor reset. */
describe('sessions, app-password scopes and two-factor reset', () => {
  let t: TestApp;
  let clock = Math.floor(Date.now() / 30_000) * 30_000;
  /** The first account: the admin. */
  let admin: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    t = await startTestApp({}, { now: () => clock });
    admin = await t.user('root');
  });
  afterAll(() => t.close());

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  /** A sign-in from a browser at an address. */
  const signin = async (username: string, userAgent: string, address: string, code?: string) => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/signin',
      headers: { 'user-agent': userAgent },
      remoteAddress: address,
      payload: { username, password: PASSWORD, ...(code ? { code } : {}) },
    });
    return res;
  };
  const tokenOf = async (username: string, userAgent: string, address: string) => {
    const res = await signin(username, userAgent, address);
    expect(res.statusCode).toBe(200);
    return (res.json() as { token: string }).token;
  };
  const sessions = async (token: string) => {
    const res = await t.app.inject({ url: '/api/auth/sessions', headers: bearer(token) });
    expect(res.statusCode).toBe(200);
    return (res.json() as { items: Array<Record<string, unknown>> }).items;
  };
  const current = async (token: string) => (await sessions(token)).find((s) => s.current);
  const revoke = (token: string, id: string) =>
    t.app.inject({ method: 'DELETE', url: `/api/auth/sessions/${id}`, headers: bearer(token) });

  describe('sessions', () => {
    it('lists each sign-in with its user agent, address and times, newest first, marking this one', async () => {
      await t.user('sam');
      clock += 1_000;
      const laptop = await tokenOf('sam', FIREFOX, '203.0.113.7');
      clock += 1_000;
      const phone = await tokenOf('sam', SAFARI, '2001:db8::42');
      const items = await sessions(phone);
      // The sign-up helper's own session is the oldest.
      expect(items).toHaveLength(3);
      expect(items[0]).toEqual({
        id: expect.any(String),
        userAgent: SAFARI,
        address: '2001:db8::42',
        createdAt: new Date(clock).toISOString(),
        lastSeenAt: new Date(clock).toISOString(),
        current: true,
      });
      expect(items[1]).toMatchObject({ userAgent: FIREFOX, address: '203.0.113.7', current: false });
      expect(items.filter((s) => s.current)).toHaveLength(1);
      expect((await sessions(laptop))[1]).toMatchObject({ userAgent: FIREFOX, current: true });
    });

    it('keeps the user agent and address current when the session slides, without a write per request', async () => {
      await t.user('sue');
      const token = await tokenOf('sue', FIREFOX, '203.0.113.8');
      const seen = (agent: string, address: string) =>
        t.app.inject({
          url: '/api/auth/me',
          headers: { ...bearer(token), 'user-agent': agent },
          remoteAddress: address,
        });
      // Within the minute: nothing is written.
      clock += 10_000;
      await seen(SAFARI, '198.51.100.1');
      expect(await current(token)).toMatchObject({ userAgent: FIREFOX, address: '203.0.113.8' });
      // A minute on, the slide carries the client along.
      clock += 60_000;
      await seen(SAFARI, '198.51.100.2');
      expect(await current(token)).toMatchObject({
        userAgent: SAFARI,
        address: '198.51.100.2',
        lastSeenAt: new Date(clock).toISOString(),
      });
    });

    it('cuts a long user agent to what the column holds, and shows an IPv4 client as IPv4', async () => {
      await t.user('sid');
      const token = await tokenOf('sid', `${'x'.repeat(300)}`, '::ffff:203.0.113.9');
      expect(await current(token)).toMatchObject({ userAgent: 'x'.repeat(255), address: '203.0.113.9' });
    });

    it('signs a revoked session out at its next request', async () => {
      await t.user('tom');
      const laptop = await tokenOf('tom', FIREFOX, '203.0.113.10');
      const phone = await tokenOf('tom', SAFARI, '203.0.113.11');
      const phoneId = (await current(phone))?.id as string;
      expect((await t.app.inject({ url: '/api/files', headers: bearer(phone) })).statusCode).toBe(200);

      expect((await revoke(laptop, phoneId)).statusCode).toBe(204);
      const next = await t.app.inject({ url: '/api/files', headers: bearer(phone) });
      expect(next.statusCode).toBe(401);
      expect(errorCode(next)).toBe('unauthorized');
      expect((await sessions(laptop)).map((s) => s.id)).not.toContain(phoneId);
      // Gone is gone: a second revoke is an unknown id.
      expect((await revoke(laptop, phoneId)).statusCode).toBe(404);
    });

    it("answers 404 for another user's session, and leaves it signed in", async () => {
      await t.user('uma');
      await t.user('vic');
      const uma = await tokenOf('uma', FIREFOX, '203.0.113.12');
      const vic = await tokenOf('vic', FIREFOX, '203.0.113.13');
      const vicId = (await current(vic))?.id as string;
      const res = await revoke(uma, vicId);
      expect(res.statusCode).toBe(404);
      expect(errorCode(res)).toBe('not_found');
      expect((await revoke(uma, 'no-such-session')).statusCode).toBe(404);
      expect((await t.app.inject({ url: '/api/files', headers: bearer(vic) })).statusCode).toBe(200);
      // An admin is no different: this is the user's own list.
      expect((await revoke(admin.token, vicId)).statusCode).toBe(404);
    });

    it('signs out every other session at once, keeping this one', async () => {
      const walt = await t.user('walt');
      const a = await tokenOf('walt', FIREFOX, '203.0.113.14');
      const b = await tokenOf('walt', SAFARI, '203.0.113.15');
      const res = await t.app.inject({ method: 'DELETE', url: '/api/auth/sessions', headers: bearer(b) });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ signedOut: 2 });
      for (const gone of [a, walt.token]) {
        expect((await t.app.inject({ url: '/api/files', headers: bearer(gone) })).statusCode).toBe(401);
      }
      expect(await sessions(b)).toHaveLength(1);
    });

    it('is not for app passwords: they neither see nor end sessions', async () => {
      const xena = await t.user('xena');
      const secret = await t.appPassword(xena.headers);
      const list = await t.app.inject({ url: '/api/auth/sessions', headers: bearer(secret) });
      expect(list.statusCode).toBe(403);
      const all = await t.app.inject({
        method: 'DELETE',
        url: '/api/auth/sessions',
        headers: bearer(secret),
      });
      expect(all.statusCode).toBe(403);
      expect((await t.app.inject({ url: '/api/files', headers: xena.headers })).statusCode).toBe(200);
    });
  });

  describe('app-password scopes', () => {
    const create = (headers: Record<string, string>, payload: Record<string, unknown>) =>
      t.app.inject({ method: 'POST', url: '/api/auth/app-passwords', headers, payload });

    it("an admin's app password is files-only by default: every admin route answers 403", async () => {
      const res = await create(admin.headers, { name: 'sync' });
      expect(res.statusCode).toBe(201);
      const { appPassword, secret } = res.json();
      expect(appPassword.scope).toBe('files');
      for (const url of ['/api/admin/users', '/api/admin/invites']) {
        const refused = await t.app.inject({ url, headers: bearer(secret) });
        expect(refused.statusCode).toBe(403);
        expect(errorCode(refused)).toBe('forbidden');
      }
      const me = (await t.app.inject({ url: '/api/auth/me', headers: bearer(secret) })).json();
      expect(me.user.isAdmin).toBe(false);
      // Files are its business.
      expect((await t.app.inject({ url: '/api/files', headers: bearer(secret) })).statusCode).toBe(200);
    });

    it('an admin-scoped one administers, and the list says which is which', async () => {
      const res = await create(admin.headers, { name: 'backup script', scope: 'admin' });
      expect(res.statusCode).toBe(201);
      const { appPassword, secret } = res.json();
      expect(appPassword.scope).toBe('admin');
      expect((await t.app.inject({ url: '/api/admin/users', headers: bearer(secret) })).statusCode).toBe(200);
      const list = (await t.app.inject({ url: '/api/auth/app-passwords', headers: admin.headers })).json();
      const scopes = Object.fromEntries(
        list.items.map((p: { name: string; scope: string }) => [p.name, p.scope]),
      );
      expect(scopes).toMatchObject({ sync: 'files', 'backup script': 'admin' });
    });

    it('the admin scope is for admins only, and is no more than its owner is', async () => {
      const yan = await t.user('yan');
      const refused = await create(yan.headers, { name: 'nope', scope: 'admin' });
      expect(refused.statusCode).toBe(403);
      expect(errorCode(refused)).toBe('forbidden');
      expect(
        (await t.app.inject({ url: '/api/auth/app-passwords', headers: yan.headers })).json().items,
      ).toEqual([]);
      const odd = await create(yan.headers, { name: 'odd', scope: 'root' });
      expect(odd.statusCode).toBe(400);

      // An admin-scoped password of someone who is no longer an admin carries the user role.
      const zed = await t.user('zed');
      await t.app.services.db('users').where({ id: zed.id }).update({ is_admin: true });
      const { secret } = (await create(zed.headers, { name: 'ops', scope: 'admin' })).json();
      expect((await t.app.inject({ url: '/api/admin/users', headers: bearer(secret) })).statusCode).toBe(200);
      await t.app.services.db('users').where({ id: zed.id }).update({ is_admin: false });
      expect((await t.app.inject({ url: '/api/admin/users', headers: bearer(secret) })).statusCode).toBe(403);
    });

    it('the Nextcloud Login Flow mints files-only passwords, even for an admin', async () => {
      const started = await t.app.inject({
        method: 'POST',
        url: '/index.php/login/v2',
        headers: { 'user-agent': 'nextcloudcmd' },
      });
      const flowToken = (started.json() as { login: string }).login.split('/').at(-1);
      const approved = await t.app.inject({
        method: 'POST',
        url: `/api/login-flows/${flowToken}/approve`,
        headers: admin.headers,
      });
      expect(approved.statusCode).toBe(200);
      expect(approved.json().appPassword.scope).toBe('files');
    });

    it('an app password stored before scopes reads as files-only', async () => {
      const { appPassword, secret } = (await create(admin.headers, { name: 'old', scope: 'admin' })).json();
      // What the migration leaves an existing row with.
      await t.app.services.db('app_passwords').where({ id: appPassword.id }).update({ scope: 'files' });
      expect((await t.app.inject({ url: '/api/admin/users', headers: bearer(secret) })).statusCode).toBe(403);
      const column = await t.app.services.db('app_passwords').columnInfo('scope');
      expect(String(column.defaultValue)).toContain('files');
    });
  });

  describe('two-factor', () => {
    const setup = (headers: Record<string, string>, payload?: Record<string, unknown>) =>
      t.app.inject({ method: 'POST', url: '/api/auth/totp', headers, ...(payload ? { payload } : {}) });

    it('setting TOTP up asks for the account password again', async () => {
      const ann = await t.user('ann');
      const bare = await setup(ann.headers);
      expect(bare.statusCode).toBe(400);
      const wrong = await setup(ann.headers, { password: 'not the password' });
      expect(wrong.statusCode).toBe(403);
      expect(errorCode(wrong)).toBe('wrong_password');
      expect(await t.app.services.db('user_totp').where({ user_id: ann.id }).first()).toBeUndefined();
      const right = await setup(ann.headers, { password: PASSWORD });
      expect(right.statusCode).toBe(201);
      expect(right.json().recoveryCodes).toHaveLength(10);
    });

    it('an admin removes a user’s two-factor sign-in; the password alone signs in again', async () => {
      const bea = await t.user('bea');
      const { secret } = (await setup(bea.headers, { password: PASSWORD })).json();
      const confirm = await t.app.inject({
        method: 'POST',
        url: '/api/auth/totp/confirm',
        headers: bea.headers,
        payload: { code: codeAt(secret, clock) },
      });
      expect(confirm.statusCode).toBe(204);
      expect(errorCode(await signin('bea', FIREFOX, '203.0.113.20'))).toBe('totp_required');

      // Not for users, nor for an admin's files-only app password.
      const reset = (headers: Record<string, string>, id = bea.id) =>
        t.app.inject({ method: 'DELETE', url: `/api/admin/users/${id}/two-factor`, headers });
      const cat = await t.user('cat');
      expect((await reset(cat.headers)).statusCode).toBe(403);
      expect((await reset(bearer(await t.appPassword(admin.headers)))).statusCode).toBe(403);
      expect(errorCode(await signin('bea', FIREFOX, '203.0.113.20'))).toBe('totp_required');
      expect((await reset(admin.headers, 'no-such-user')).statusCode).toBe(404);

      expect((await reset(admin.headers)).statusCode).toBe(204);
      expect((await signin('bea', FIREFOX, '203.0.113.20')).statusCode).toBe(200);
      const status = (await t.app.inject({ url: '/api/auth/totp', headers: bea.headers })).json();
      expect(status).toMatchObject({ enabled: false, recoveryCodesLeft: 0 });
      expect(
        await t.app.services.db('totp_recovery_codes').where({ user_id: bea.id }).first(),
      ).toBeUndefined();
      // Again: nothing left to remove is not an error.
      expect((await reset(admin.headers)).statusCode).toBe(204);
    });
  });
});
