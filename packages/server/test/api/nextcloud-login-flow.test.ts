import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';

const NEXTCLOUDCMD =
  'Mozilla/5.0 (Linux) mirall/3.7.3git (nextcloudcmd, debian-6.1 ClientArchitecture: x86_64 OsArchitecture: x86_64)';

/** Login Flow v2: how the Nextcloud apps sign in (start, browser approval, one-shot poll). */
describe('Nextcloud Login Flow v2', () => {
  let t: TestApp;
  let clock = Date.now();
  let alice: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    t = await startTestApp({}, { now: () => clock });
    alice = await t.user('alice');
  });
  afterAll(() => t.close());

  const start = async (userAgent = NEXTCLOUDCMD) => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/index.php/login/v2',
      headers: { 'user-agent': userAgent },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { poll: { token: string; endpoint: string }; login: string };
    const flowToken = body.login.split('/').at(-1)!;
    return { ...body, flowToken };
  };
  /** As the desktop client polls: a form body. */
  const poll = (token: string) =>
    t.app.inject({
      method: 'POST',
      url: '/index.php/login/v2/poll',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `token=${encodeURIComponent(token)}`,
    });
  const answer = (flowToken: string, what: 'approve' | 'deny', headers = alice.headers) =>
    t.app.inject({ method: 'POST', url: `/api/login-flows/${flowToken}/${what}`, headers });
  const basic = (user: string, password: string) => ({
    authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
  });

  it('starts a flow with absolute poll and login URLs, and sends the browser to the web app', async () => {
    const flow = await start();
    expect(flow.poll.endpoint).toBe('http://localhost:80/index.php/login/v2/poll');
    expect(flow.login).toMatch(/^http:\/\/localhost:80\/index\.php\/login\/v2\/flow\/[A-Za-z0-9_-]{40,}$/);
    expect(flow.poll.token).toMatch(/^[A-Za-z0-9_-]{64,}$/);
    expect(flow.poll.token).not.toBe(flow.flowToken);

    const landing = await t.app.inject({ url: new URL(flow.login).pathname });
    expect(landing.statusCode).toBe(303);
    expect(landing.headers.location).toBe(`/connect/${flow.flowToken}`);

    const shown = await t.app.inject({ url: `/api/login-flows/${flow.flowToken}`, headers: alice.headers });
    expect(shown.statusCode).toBe(200);
    expect(shown.json()).toEqual({
      clientName: 'nextcloudcmd',
      expiresAt: new Date(clock + 20 * 60_000).toISOString(),
    });
    // Only hashes of the tokens are stored.
    const rows = JSON.stringify(await t.app.services.db('login_flows').select('*'));
    expect(rows).not.toContain(flow.poll.token);
    expect(rows).not.toContain(flow.flowToken);
  });

  it('polls 404 until approved, then hands over a working app password once, then 404 again', async () => {
    const flow = await start();
    expect((await poll(flow.poll.token)).statusCode).toBe(404);

    const approved = await answer(flow.flowToken, 'approve');
    expect(approved.statusCode).toBe(200);
    expect(approved.json().appPassword).toMatchObject({ name: 'nextcloudcmd', lastUsedAt: null });
    // Like any app password made, it is in the audit log, with who allowed it.
    const { events } = await t.app.services.audit.page({ user: 'alice', action: 'app_password.created' });
    expect(events.find((e) => e.targetId === approved.json().appPassword.id)?.details).toMatchObject({
      via: 'login_flow',
    });

    const got = await poll(flow.poll.token);
    expect(got.statusCode).toBe(200);
    const creds = got.json() as { server: string; loginName: string; appPassword: string };
    expect(creds.server).toBe('http://localhost:80');
    expect(creds.loginName).toBe('alice');
    expect(creds.appPassword).toMatch(/^dfsapp_/);
    // The secret was erased from the database when it was handed over.
    expect(JSON.stringify(await t.app.services.db('login_flows').select('*'))).not.toContain(
      creds.appPassword,
    );

    expect((await poll(flow.poll.token)).statusCode).toBe(404);
    const again = await t.app.inject({
      method: 'POST',
      url: '/index.php/login/v2/poll',
      payload: { token: flow.poll.token },
    });
    expect(again.statusCode).toBe(404);

    const user = await t.app.inject({
      url: '/ocs/v2.php/cloud/user?format=json',
      headers: basic('alice', creds.appPassword),
    });
    expect(user.statusCode).toBe(200);
    expect(user.json().ocs.data.id).toBe('alice');
    const names = (await t.app.inject({ url: '/api/auth/app-passwords', headers: alice.headers })).json()
      .items;
    expect(names.map((p: { name: string }) => p.name)).toContain('nextcloudcmd');
    // A flow is answered once.
    expect((await answer(flow.flowToken, 'approve')).statusCode).toBe(404);
  });

  it("v1, a mobile app's webview: the same page, then the credentials in an nc:// URL, to the approving user only", async () => {
    const android = 'Mozilla/5.0 (Android) Nextcloud-android/3.29.0';
    const opened = await t.app.inject({
      url: '/index.php/login/flow',
      headers: { 'user-agent': android, 'ocs-apirequest': 'true' },
    });
    expect(opened.statusCode).toBe(303);
    const landing = new URL(String(opened.headers.location), 'http://x');
    const flowToken = landing.pathname.split('/').at(-1)!;
    const grant = landing.searchParams.get('grant')!;
    expect(landing.pathname).toMatch(/^\/connect\/[A-Za-z0-9_-]{40,}$/);
    expect(grant).toMatch(/^[A-Za-z0-9_-]{64,}$/);
    const collect = (headers: Record<string, string>) =>
      t.app.inject({ url: `/index.php/login/flow/grant?token=${encodeURIComponent(grant)}`, headers });
    // Nothing before the user allows it.
    expect((await collect(alice.headers)).statusCode).toBe(404);
    const shown = await t.app.inject({ url: `/api/login-flows/${flowToken}`, headers: alice.headers });
    expect(shown.json()).toMatchObject({ clientName: 'Nextcloud Android' });
    expect((await answer(flowToken, 'approve')).statusCode).toBe(200);
    // Another user's session, and no session, get nothing.
    const bob = await t.user('bob-v1');
    expect((await collect(bob.headers)).statusCode).toBe(404);
    expect((await collect({})).statusCode).toBe(401);
    const got = await collect(alice.headers);
    expect(got.statusCode).toBe(303);
    const m = /^nc:\/\/login\/server:(.+)&user:(.+)&password:(.+)$/.exec(String(got.headers.location));
    expect(m?.[1]).toBe('http://localhost:80');
    expect(decodeURIComponent(m![2]!)).toBe('alice');
    const password = decodeURIComponent(m![3]!);
    const user = await t.app.inject({
      url: '/ocs/v2.php/cloud/user?format=json',
      headers: basic('alice', password),
    });
    expect(user.statusCode).toBe(200);
    // Once only; and the v2 poll cannot collect it a second time either.
    expect((await collect(alice.headers)).statusCode).toBe(404);
    expect((await poll(grant)).statusCode).toBe(404);
  });

  it('takes a JSON poll as well, and names the app after the desktop client', async () => {
    const flow = await start(
      'Mozilla/5.0 (Windows) mirall/3.14.0 (Nextcloud, windows-10.0.19045 ClientArchitecture: x86_64 OsArchitecture: x86_64)',
    );
    expect((await answer(flow.flowToken, 'approve')).json().appPassword.name).toBe('Nextcloud desktop');
    const got = await t.app.inject({
      method: 'POST',
      url: '/index.php/login/v2/poll',
      payload: { token: flow.poll.token },
    });
    expect(got.statusCode).toBe(200);
    expect(got.json().loginName).toBe('alice');
  });

  it('starts and polls whatever body type an app sends along, or none', async () => {
    for (const headers of [
      { 'content-type': 'application/json' },
      { 'content-type': 'text/plain' },
      { 'content-type': 'application/x-www-form-urlencoded' },
    ]) {
      const res = await t.app.inject({ method: 'POST', url: '/index.php/login/v2', headers, payload: '' });
      expect(res.statusCode).toBe(200);
      expect(res.json().poll.token).toBeTruthy();
    }
    const flow = await start();
    for (const [type, payload] of [
      ['application/json', ''],
      ['application/json', '{not json'],
      ['text/plain', `token=${flow.poll.token}`],
    ]) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/index.php/login/v2/poll',
        headers: { 'content-type': type! },
        payload,
      });
      expect(res.statusCode).toBe(404);
    }
    await answer(flow.flowToken, 'approve');
    const byQuery = await t.app.inject({
      method: 'POST',
      url: `/index.php/login/v2/poll?token=${flow.poll.token}`,
    });
    expect(byQuery.statusCode).toBe(200);
  });

  it('a denied flow never returns credentials and cannot be approved after', async () => {
    const before = (await t.app.inject({ url: '/api/auth/app-passwords', headers: alice.headers })).json()
      .items.length;
    const flow = await start();
    expect((await answer(flow.flowToken, 'deny')).statusCode).toBe(204);
    expect((await poll(flow.poll.token)).statusCode).toBe(404);
    const late = await answer(flow.flowToken, 'approve');
    expect(late.statusCode).toBe(404);
    expect(errorCode(late)).toBe('not_found');
    expect((await poll(flow.poll.token)).statusCode).toBe(404);
    const after = (await t.app.inject({ url: '/api/auth/app-passwords', headers: alice.headers })).json()
      .items.length;
    expect(after).toBe(before);
  });

  it('expires after 20 minutes: no approval, no credentials, and an uncollected password is revoked', async () => {
    const late = await start();
    clock += 20 * 60_000 + 1;
    expect(
      (await t.app.inject({ url: `/api/login-flows/${late.flowToken}`, headers: alice.headers })).statusCode,
    ).toBe(404);
    expect((await answer(late.flowToken, 'approve')).statusCode).toBe(404);
    expect((await poll(late.poll.token)).statusCode).toBe(404);

    const uncollected = await start();
    expect((await answer(uncollected.flowToken, 'approve')).statusCode).toBe(200);
    const id = (await t.app.services.db('login_flows').whereNotNull('app_password_id').first())
      .app_password_id;
    clock += 20 * 60_000 + 1;
    expect((await poll(uncollected.poll.token)).statusCode).toBe(404);
    await start(); // starting a flow sweeps the expired ones
    expect(await t.app.services.db('app_passwords').where({ id }).first()).toBeUndefined();
    expect(await t.app.services.db('login_flows').where('expires_at', '<=', clock).first()).toBeUndefined();
  });

  it('approval takes a signed-in session: not anonymous, not an app password', async () => {
    const flow = await start();
    expect((await t.app.inject({ url: `/api/login-flows/${flow.flowToken}` })).statusCode).toBe(401);
    expect((await answer(flow.flowToken, 'approve', {})).statusCode).toBe(401);
    const secret = await t.appPassword(alice.headers);
    const withApp = await answer(flow.flowToken, 'approve', { authorization: `Bearer ${secret}` });
    expect(withApp.statusCode).toBe(403);
    expect((await poll(flow.poll.token)).statusCode).toBe(404);
    expect((await answer('not-a-flow', 'approve')).statusCode).toBe(404);
  });

  it('never lets the account password into the OCS API', async () => {
    const res = await t.app.inject({
      url: '/ocs/v1.php/cloud/user?format=json',
      headers: basic('alice', 'correct horse battery'),
    });
    expect(res.statusCode).toBe(401);
  });

  // Last: it spends this address's budget of flow starts.
  it('limits how many flows one address starts', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 61; i++) {
      codes.push((await t.app.inject({ method: 'POST', url: '/index.php/login/v2' })).statusCode);
    }
    expect(codes.at(-1)).toBe(429);
    expect(codes.filter((c) => c === 200).length).toBeGreaterThan(40);
    const rows = await t.app.services.db('login_flows').count({ n: '*' }).first();
    expect(Number(rows?.n)).toBeLessThanOrEqual(61);
  });
});

describe('Nextcloud Login Flow v2 behind a public URL', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ DFS_PUBLIC_URL: 'https://files.example.org' });
  });
  afterAll(() => t.close());

  it('names DFS_PUBLIC_URL in every URL it gives the app, whatever Host the request had', async () => {
    const user = await t.user('carol');
    const res = await t.app.inject({
      method: 'POST',
      url: '/index.php/login/v2',
      headers: { host: 'internal:8080' },
    });
    const flow = res.json() as { poll: { token: string; endpoint: string }; login: string };
    expect(flow.poll.endpoint).toBe('https://files.example.org/index.php/login/v2/poll');
    expect(flow.login.startsWith('https://files.example.org/index.php/login/v2/flow/')).toBe(true);
    const flowToken = flow.login.split('/').at(-1)!;
    await t.app.inject({
      method: 'POST',
      url: `/api/login-flows/${flowToken}/approve`,
      headers: user.headers,
    });
    const got = await t.app.inject({
      method: 'POST',
      url: '/index.php/login/v2/poll',
      headers: { host: 'internal:8080' },
      payload: { token: flow.poll.token },
    });
    expect(got.json()).toMatchObject({ server: 'https://files.example.org', loginName: 'carol' });
  });
});
