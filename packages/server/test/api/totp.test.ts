import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';

const PASSWORD = 'correct horse battery';

/** What an authenticator app shows at `at` for `secret` (RFC 6238's defaults). */
const codeAt = (secret: string, at: number) =>
  new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({
    timestamp: at,
  });
/** A six-digit code that is not `code`. */
const otherThan = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

describe('two-factor sign-in (TOTP)', () => {
  let t: TestApp;
  // On a step boundary, so "the next step" is exactly 30 s on.
  let clock = Math.floor(Date.now() / 30_000) * 30_000;

  beforeAll(async () => {
    t = await startTestApp({}, { now: () => clock });
  });
  afterAll(() => t.close());

  const signin = (username: string, extra: { code?: string; password?: string } = {}) =>
    t.app.inject({
      method: 'POST',
      url: '/api/auth/signin',
      payload: {
        username,
        password: extra.password ?? PASSWORD,
        ...(extra.code ? { code: extra.code } : {}),
      },
    });
  const status = async (headers: Record<string, string>) =>
    (await t.app.inject({ url: '/api/auth/totp', headers })).json();
  const setup = (headers: Record<string, string>) =>
    t.app.inject({ method: 'POST', url: '/api/auth/totp', headers, payload: { password: PASSWORD } });
  const confirm = (headers: Record<string, string>, code: string) =>
    t.app.inject({ method: 'POST', url: '/api/auth/totp/confirm', headers, payload: { code } });
  const turnOff = (headers: Record<string, string>, code: string) =>
    t.app.inject({ method: 'DELETE', url: '/api/auth/totp', headers, payload: { code } });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  /** A user with two-factor sign-in on; the session that turned it on, its secret and codes. */
  async function withTotp(name: string) {
    const user = await t.user(name);
    const made = (await setup(user.headers)).json() as { secret: string; recoveryCodes: string[] };
    expect((await confirm(user.headers, codeAt(made.secret, clock))).statusCode).toBe(204);
    return { ...user, ...made };
  }

  it('sets up a secret that is not active until a right code confirms it, and never shows it again', async () => {
    const alice = await t.user('alice');
    expect(await status(alice.headers)).toEqual({
      enabled: false,
      enabledAt: null,
      recoveryCodesLeft: 0,
      sessionNeedsSignin: false,
    });
    const res = await setup(alice.headers);
    expect(res.statusCode).toBe(201);
    const { secret, otpauthUrl, recoveryCodes } = res.json() as {
      secret: string;
      otpauthUrl: string;
      recoveryCodes: string[];
    };
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(otpauthUrl).toMatch(/^otpauth:\/\/totp\//);
    expect(new URL(otpauthUrl).searchParams.get('secret')).toBe(secret);
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);

    // At rest: neither the secret nor a recovery code in any row.
    const rows = JSON.stringify([
      await t.app.services.db('user_totp').select('*'),
      await t.app.services.db('totp_recovery_codes').select('*'),
    ]);
    expect(rows).not.toContain(secret);
    for (const code of recoveryCodes) expect(rows).not.toContain(code);

    // Not active yet: the password alone still signs in.
    expect((await signin('alice')).statusCode).toBe(200);

    const wrong = await confirm(alice.headers, otherThan(codeAt(secret, clock)));
    expect(wrong.statusCode).toBe(403);
    expect(errorCode(wrong)).toBe('totp_invalid');
    expect((await status(alice.headers)).enabled).toBe(false);

    expect((await confirm(alice.headers, codeAt(secret, clock))).statusCode).toBe(204);
    const on = await status(alice.headers);
    expect(on).toEqual({
      enabled: true,
      enabledAt: new Date(clock).toISOString(),
      recoveryCodesLeft: 10,
      sessionNeedsSignin: false,
    });
    expect(JSON.stringify(on)).not.toContain(secret);

    // A new secret only after turning it off: a stolen session cannot swap it.
    const again = await setup(alice.headers);
    expect(again.statusCode).toBe(409);
    expect(errorCode(again)).toBe('totp_enabled');
  });

  it('asks for the code at sign-in, and refuses wrong, reused and expired codes', async () => {
    const bob = await withTotp('bob');
    const sessions = async () => Number((await t.app.services.db('sessions').count({ n: '*' }).first())?.n);
    const before = await sessions();

    const bare = await signin('bob');
    expect(bare.statusCode).toBe(401);
    expect(errorCode(bare)).toBe('totp_required');
    // A wrong password is still just that, code or not.
    const badPassword = await signin('bob', {
      password: 'not the password',
      code: codeAt(bob.secret, clock),
    });
    expect(errorCode(badPassword)).toBe('invalid_credentials');

    const wrong = await signin('bob', { code: otherThan(codeAt(bob.secret, clock)) });
    expect(wrong.statusCode).toBe(403);
    expect(errorCode(wrong)).toBe('totp_invalid');
    // The code that turned it on was used in this time step: it does not sign in.
    const reusedFromSetup = await signin('bob', { code: codeAt(bob.secret, clock) });
    expect(errorCode(reusedFromSetup)).toBe('totp_invalid');
    expect(await sessions()).toBe(before);

    clock += 30_000;
    const ok = await signin('bob', { code: codeAt(bob.secret, clock) });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().user.username).toBe('bob');
    expect((await t.app.inject({ url: '/api/auth/me', headers: bearer(ok.json().token) })).statusCode).toBe(
      200,
    );
    // The same code a second time, within its step: refused.
    const reused = await signin('bob', { code: codeAt(bob.secret, clock) });
    expect(errorCode(reused)).toBe('totp_invalid');

    // Five minutes on, a code from a minute ago (two steps back) has expired, though never used.
    clock += 5 * 60_000;
    const expired = await signin('bob', { code: codeAt(bob.secret, clock - 60_000) });
    expect(errorCode(expired)).toBe('totp_invalid');
    // A phone a step behind is still fine; spaces as apps show them are ignored.
    const late = codeAt(bob.secret, clock - 30_000);
    expect((await signin('bob', { code: `${late.slice(0, 3)} ${late.slice(3)}` })).statusCode).toBe(200);
    expect(await sessions()).toBe(before + 2);
  });

  it('takes each recovery code once, in place of a TOTP', async () => {
    const carol = await withTotp('carol');
    const [first, second] = carol.recoveryCodes as [string, string];
    expect((await signin('carol', { code: first })).statusCode).toBe(200);
    const again = await signin('carol', { code: first });
    expect(again.statusCode).toBe(403);
    expect(errorCode(again)).toBe('totp_invalid');
    // Typed in capitals, without its dash.
    expect((await signin('carol', { code: second.replace('-', '').toUpperCase() })).statusCode).toBe(200);
    expect(errorCode(await signin('carol', { code: 'abcde-fghij' }))).toBe('totp_invalid');
    expect((await status(carol.headers)).recoveryCodesLeft).toBe(8);
  });

  it('mints app passwords only from a session that passed the code; app passwords still sign in alone', async () => {
    const dave = await t.user('dave');
    // Signed in before two-factor is on: another browser, and a program's app password.
    const { token: oldToken } = (await signin('dave')).json();
    const oldSession = bearer(oldToken);
    const before = await t.appPassword(oldSession, 'made before');

    const { secret } = (await setup(dave.headers)).json();
    clock += 30_000;
    expect((await confirm(dave.headers, codeAt(secret, clock))).statusCode).toBe(204);

    const refused = await t.app.inject({
      method: 'POST',
      url: '/api/auth/app-passwords',
      headers: oldSession,
      payload: { name: 'sneaky' },
    });
    expect(refused.statusCode).toBe(403);
    expect(errorCode(refused)).toBe('second_factor_required');
    expect(refused.json().error.message).toMatch(/sign in again/);
    expect((await status(oldSession)).sessionNeedsSignin).toBe(true);
    // Nor through a Nextcloud app's sign-in, which mints one too.
    const flow = (
      await t.app.inject({ method: 'POST', url: '/index.php/login/v2', headers: { 'user-agent': 'test' } })
    ).json() as { login: string };
    const flowToken = flow.login.split('/').at(-1);
    const allowed = await t.app.inject({
      method: 'POST',
      url: `/api/login-flows/${flowToken}/approve`,
      headers: oldSession,
    });
    expect(errorCode(allowed)).toBe('second_factor_required');
    const names = (await t.app.services.repos.appPasswords.listByUser(dave.id)).map((p) => p.name);
    expect(names).toEqual(['made before']);

    // The session that turned it on showed a code; so does a new sign-in.
    expect((await status(dave.headers)).sessionNeedsSignin).toBe(false);
    const fromSetup = await t.appPassword(dave.headers, 'from the setup session');
    clock += 30_000;
    const { token } = (await signin('dave', { code: codeAt(secret, clock) })).json();
    const fresh = await t.appPassword(bearer(token), 'from a new session');

    // Programs sign in with an app password alone, over the API and over WebDAV.
    for (const app of [before, fromSetup, fresh]) {
      expect((await t.app.inject({ url: '/api/auth/me', headers: bearer(app) })).statusCode).toBe(200);
      const dav = await t.app.inject({
        method: 'PROPFIND' as 'GET',
        url: '/dav/',
        headers: { authorization: `Basic ${Buffer.from(`dave:${app}`).toString('base64')}`, depth: '0' },
      });
      expect(dav.statusCode).toBe(207);
    }
    // An app password does not manage two-factor sign-in.
    const byApp = await setup(bearer(fresh));
    expect(byApp.statusCode).toBe(403);
    expect(errorCode(byApp)).toBe('forbidden');
    expect((await turnOff(bearer(fresh), codeAt(secret, clock + 30_000))).statusCode).toBe(403);
  });

  it('turns off with a code (or a recovery code); then the password alone signs in again', async () => {
    const erin = await withTotp('erin');
    clock += 30_000;
    const wrong = await turnOff(erin.headers, otherThan(codeAt(erin.secret, clock)));
    expect(errorCode(wrong)).toBe('totp_invalid');
    expect((await status(erin.headers)).enabled).toBe(true);
    expect((await turnOff(erin.headers, codeAt(erin.secret, clock))).statusCode).toBe(204);
    expect(await status(erin.headers)).toMatchObject({ enabled: false, recoveryCodesLeft: 0 });
    expect((await signin('erin')).statusCode).toBe(200);
    expect(await t.app.services.db('totp_recovery_codes').where({ user_id: erin.id })).toEqual([]);
    const gone = await turnOff(erin.headers, codeAt(erin.secret, clock));
    expect(gone.statusCode).toBe(404);

    const frank = await withTotp('frank');
    expect((await turnOff(frank.headers, frank.recoveryCodes[0]!)).statusCode).toBe(204);
    expect((await signin('frank')).statusCode).toBe(200);
  });

  it('refuses bad bodies with 400 and changes nothing', async () => {
    const gina = await t.user('gina');
    for (const payload of [{}, { code: '' }, { code: 'x'.repeat(65) }, { code: '123456', extra: 1 }]) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/auth/totp/confirm',
        headers: gina.headers,
        payload,
      });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
    }
    // Confirming with no setup begun is a 404, not an error.
    expect((await confirm(gina.headers, '123456')).statusCode).toBe(404);
    expect(await t.app.services.db('user_totp').where({ user_id: gina.id })).toEqual([]);
  });
});

describe('two-factor code attempts', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ DFS_SIGNIN_RATE_LIMIT: '3' });
  });
  afterAll(() => t.close());

  it('are rate-limited per account at sign-in, from any address', async () => {
    await t.user('henry');
    const tries: number[] = [];
    for (let i = 1; i <= 4; i++) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/auth/signin',
        payload: { username: 'henry', password: PASSWORD, code: '123456' },
        remoteAddress: `198.51.100.${i}`,
      });
      tries.push(res.statusCode);
    }
    expect(tries).toEqual([200, 200, 200, 429]);
  });

  it('are rate-limited per account when confirming or turning off', async () => {
    const ivy = await t.user('ivy');
    await t.app.inject({
      method: 'POST',
      url: '/api/auth/totp',
      headers: ivy.headers,
      payload: { password: PASSWORD },
    });
    const tries: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/auth/totp/confirm',
        headers: ivy.headers,
        payload: { code: '000000' },
      });
      tries.push(res.statusCode);
    }
    expect(tries.slice(0, 3).every((s) => s === 403 || s === 204)).toBe(true);
    expect(tries[3]).toBe(429);
  });
});
