import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';

const PASSWORD = 'correct horse battery';

function client(t: TestApp) {
  return {
    signup: (payload: object, remoteAddress?: string) =>
      t.app.inject({ method: 'POST', url: '/api/auth/signup', payload, remoteAddress }),
    signin: (username: string, password = PASSWORD) =>
      t.app.inject({ method: 'POST', url: '/api/auth/signin', payload: { username, password } }),
    call: (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, headers: object, payload?: object) =>
      t.app.inject({ method, url, headers: headers as Record<string, string>, payload }),
  };
}

describe('sign-up rate limit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ DFS_SIGNUP_RATE_LIMIT: '3' });
  });
  afterAll(() => t.close());

  it('allows a few sign-ups per address per hour, then answers 429 and creates nothing', async () => {
    const c = client(t);
    for (const name of ['rl-one', 'rl-two', 'rl-three']) {
      expect((await c.signup({ username: name, password: PASSWORD })).statusCode).toBe(201);
    }
    const refused = await c.signup({ username: 'rl-four', password: PASSWORD });
    expect(refused.statusCode).toBe(429);
    expect(errorCode(refused)).toBe('rate_limited');
    expect((await c.signin('rl-four')).statusCode).toBe(401);
    // The budget is per address: another one still signs up.
    const elsewhere = await c.signup({ username: 'rl-four', password: PASSWORD }, '10.1.2.3');
    expect(elsewhere.statusCode).toBe(201);
    expect((await c.signin('rl-four')).statusCode).toBe(200);
  });
});

describe('DFS_SIGNUP=closed', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ DFS_SIGNUP: 'closed' });
  });
  afterAll(() => t.close());

  it('still lets a fresh install create its admin, then refuses sign-up with 403', async () => {
    const c = client(t);
    const first = await c.signup({ username: 'root', password: PASSWORD });
    expect(first.statusCode).toBe(201);
    expect(first.json().user.isAdmin).toBe(true);

    const second = await c.signup({ username: 'mallory', password: PASSWORD });
    expect(second.statusCode).toBe(403);
    expect(errorCode(second)).toBe('signup_closed');
    expect(second.json().error.message).toMatch(/closed/);
    expect((await c.signin('mallory')).statusCode).toBe(401);
  });

  it('lets an admin create users directly, and only an admin', async () => {
    const c = client(t);
    const { token } = (await c.signin('root')).json();
    const admin = { authorization: `Bearer ${token}` };
    const created = await c.call('POST', '/api/admin/users', admin, {
      username: 'Carol',
      password: PASSWORD,
    });
    expect(created.statusCode).toBe(201);
    expect(created.json().user).toMatchObject({
      username: 'carol',
      isAdmin: false,
      usage: { usedBytes: 0, quotaBytes: null },
    });
    const second = await c.call('POST', '/api/admin/users', admin, {
      username: 'dana',
      password: PASSWORD,
      isAdmin: true,
    });
    expect(second.json().user.isAdmin).toBe(true);
    const taken = await c.call('POST', '/api/admin/users', admin, { username: 'CAROL', password: PASSWORD });
    expect(taken.statusCode).toBe(409);
    expect(errorCode(taken)).toBe('username_taken');
    const weak = await c.call('POST', '/api/admin/users', admin, {
      username: 'erin12345',
      password: 'ERIN12345',
    });
    expect(errorCode(weak)).toBe('weak_password');

    const carolToken = (await c.signin('carol')).json().token;
    const carol = { authorization: `Bearer ${carolToken}` };
    const notAdmin = await c.call('POST', '/api/admin/users', carol, {
      username: 'frank',
      password: PASSWORD,
    });
    expect(notAdmin.statusCode).toBe(403);
    expect(errorCode(notAdmin)).toBe('forbidden');
    expect((await c.call('GET', '/api/admin/users', carol)).statusCode).toBe(403);
    expect((await c.call('GET', '/api/admin/users', {})).statusCode).toBe(401);

    const list = await c.call('GET', '/api/admin/users', admin);
    expect(list.statusCode).toBe(200);
    expect(list.json().total).toBe(3);
    expect(list.json().items.map((u: { username: string }) => u.username)).toEqual(['root', 'carol', 'dana']);
    const page = (await c.call('GET', '/api/admin/users?limit=1&offset=1', admin)).json();
    expect(page).toMatchObject({ total: 3, items: [{ username: 'carol' }] });
  });
});

describe('DFS_SIGNUP=invite', () => {
  let t: TestApp;
  let clock = Date.now();
  let admin: Record<string, string>;
  beforeAll(async () => {
    t = await startTestApp({ DFS_SIGNUP: 'invite' }, { now: () => clock });
    admin = (await t.user('boss')).headers;
  });
  afterAll(() => t.close());

  const invite = async (payload?: object) => {
    const res = await client(t).call('POST', '/api/admin/invites', admin, payload);
    expect(res.statusCode).toBe(201);
    return res.json().invite as { id: string; code: string; expiresAt: string; usedAt: null };
  };

  it('needs a valid invite code to sign up', async () => {
    const c = client(t);
    const none = await c.signup({ username: 'nocode', password: PASSWORD });
    expect(none.statusCode).toBe(403);
    expect(errorCode(none)).toBe('invite_invalid');
    const wrong = await c.signup({ username: 'nocode', password: PASSWORD, inviteCode: 'made-up' });
    expect(errorCode(wrong)).toBe('invite_invalid');
    expect((await c.signin('nocode')).statusCode).toBe(401);
  });

  it('spends a code on one successful sign-up only', async () => {
    const c = client(t);
    const code = await invite();
    expect(code.code).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(Date.parse(code.expiresAt) - clock).toBe(168 * 3_600_000);

    // A sign-up that fails (name taken) does not use the code up.
    const taken = await c.signup({ username: 'boss', password: PASSWORD, inviteCode: code.code });
    expect(errorCode(taken)).toBe('username_taken');
    const ok = await c.signup({ username: 'guest', password: PASSWORD, inviteCode: code.code });
    expect(ok.statusCode).toBe(201);
    expect(ok.json().user.isAdmin).toBe(false);
    const again = await c.signup({ username: 'guest2', password: PASSWORD, inviteCode: code.code });
    expect(again.statusCode).toBe(403);
    expect(errorCode(again)).toBe('invite_invalid');
    expect((await c.signin('guest2')).statusCode).toBe(401);

    const listed = (await c.call('GET', '/api/admin/invites', admin)).json();
    const row = listed.items.find((i: { id: string }) => i.id === code.id);
    expect(row.usedAt).toEqual(expect.any(String));
    expect(row).not.toHaveProperty('code');
  });

  it('refuses expired and revoked codes', async () => {
    const c = client(t);
    const short = await invite({ expiresInHours: 1 });
    clock += 3_600_001;
    const late = await c.signup({ username: 'late', password: PASSWORD, inviteCode: short.code });
    expect(errorCode(late)).toBe('invite_invalid');

    const revoked = await invite();
    const del = await c.call('DELETE', `/api/admin/invites/${revoked.id}`, admin);
    expect(del.statusCode).toBe(204);
    expect((await c.call('DELETE', `/api/admin/invites/${revoked.id}`, admin)).statusCode).toBe(404);
    const res = await c.signup({ username: 'revoked', password: PASSWORD, inviteCode: revoked.code });
    expect(errorCode(res)).toBe('invite_invalid');
    expect((await c.signin('revoked')).statusCode).toBe(401);
  });

  it('creates invites only for admins, with a bounded lifetime', async () => {
    const c = client(t);
    const code = await invite();
    await c.signup({ username: 'plain', password: PASSWORD, inviteCode: code.code });
    const plain = { authorization: `Bearer ${(await c.signin('plain')).json().token}` };
    expect((await c.call('POST', '/api/admin/invites', plain)).statusCode).toBe(403);
    const tooLong = await c.call('POST', '/api/admin/invites', admin, { expiresInHours: 100_000 });
    expect(tooLong.statusCode).toBe(400);
  });
});
