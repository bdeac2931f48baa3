import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { SoftAuthenticator } from '../support/passkey-authenticator.ts';

const PASSWORD = 'correct horse battery';
// What app.inject sends: Host localhost:80 over http.
const ORIGIN = 'http://localhost:80';

interface Ceremony {
  challengeId: string;
  options: { challenge: string; user?: { id: string }; allowCredentials?: { id: string }[] };
}

describe('passkeys', () => {
  let t: TestApp;
  let clock = Date.now();
  let aliceKey: SoftAuthenticator;

  beforeAll(async () => {
    t = await startTestApp({}, { now: () => clock });
  });
  afterAll(() => t.close());

  const post = (url: string, payload?: object, headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'POST', url, headers, ...(payload ? { payload } : {}) });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const count = async (table: string) =>
    Number((await t.app.services.db(table).count({ n: '*' }).first())?.n);

  /** Registers a new passkey for the session behind `headers`. */
  async function register(headers: Record<string, string>, name?: string) {
    const key = new SoftAuthenticator(ORIGIN, 'localhost');
    const begun = await post('/api/auth/passkeys/registration-options', { password: PASSWORD }, headers);
    expect(begun.statusCode).toBe(200);
    const ceremony = begun.json() as Ceremony;
    const done = await post(
      '/api/auth/passkeys',
      {
        challengeId: ceremony.challengeId,
        response: key.register(ceremony.options),
        ...(name ? { name } : {}),
      },
      headers,
    );
    expect(done.statusCode, done.body).toBe(201);
    return { key, passkey: done.json().passkey as { id: string; name: string } };
  }

  const signinOptions = async () => (await post('/api/auth/passkeys/signin-options')).json() as Ceremony;

  it('registers a passkey behind the password, once per challenge, and lists it', async () => {
    const alice = await t.user('alice');
    const key = new SoftAuthenticator(ORIGIN, 'localhost');
    aliceKey = key;

    const wrong = await post(
      '/api/auth/passkeys/registration-options',
      { password: 'not it at all' },
      alice.headers,
    );
    expect(wrong.statusCode).toBe(403);
    expect(errorCode(wrong)).toBe('wrong_password');

    const begun = await post(
      '/api/auth/passkeys/registration-options',
      { password: PASSWORD },
      alice.headers,
    );
    const ceremony = begun.json() as Ceremony & {
      options: { rp: { id: string; name: string }; authenticatorSelection: { residentKey: string } };
    };
    expect(ceremony.options.rp).toEqual({ id: 'localhost', name: 'dfs' });
    expect(ceremony.options.authenticatorSelection.residentKey).toBe('required');

    const answer = key.register(ceremony.options);
    // An answer signed for another origin is refused, and spends the challenge.
    const elsewhere = new SoftAuthenticator('http://evil.example', 'localhost').register(ceremony.options);
    const refused = await post(
      '/api/auth/passkeys',
      { challengeId: ceremony.challengeId, response: elsewhere },
      alice.headers,
    );
    expect(refused.statusCode).toBe(403);
    expect(errorCode(refused)).toBe('passkey_invalid');
    const spent = await post(
      '/api/auth/passkeys',
      { challengeId: ceremony.challengeId, response: answer },
      alice.headers,
    );
    expect(errorCode(spent)).toBe('passkey_invalid');
    expect(await count('passkeys')).toBe(0);

    const again = (
      await post('/api/auth/passkeys/registration-options', { password: PASSWORD }, alice.headers)
    ).json() as Ceremony;
    const ok = await post(
      '/api/auth/passkeys',
      { challengeId: again.challengeId, response: key.register(again.options), name: 'Laptop' },
      alice.headers,
    );
    expect(ok.statusCode).toBe(201);
    expect(ok.json().passkey).toMatchObject({ name: 'Laptop', lastUsedAt: null, backedUp: false });

    // The same answer a second time: its challenge is gone.
    const replay = await post(
      '/api/auth/passkeys',
      { challengeId: again.challengeId, response: key.register(again.options) },
      alice.headers,
    );
    expect(errorCode(replay)).toBe('passkey_invalid');

    // The authenticator is told which credential the account has already.
    const third = (
      await post('/api/auth/passkeys/registration-options', { password: PASSWORD }, alice.headers)
    ).json() as {
      options: { excludeCredentials: { id: string }[] };
    };
    expect(third.options.excludeCredentials.map((c) => c.id)).toEqual([key.id]);

    const list = await t.app.inject({ url: '/api/auth/passkeys', headers: alice.headers });
    expect(list.json().items).toEqual([expect.objectContaining({ name: 'Laptop', lastUsedAt: null })]);

    // Malformed answers are a 400, not a crash.
    const garbage = await post(
      '/api/auth/passkeys',
      { challengeId: again.challengeId, response: { id: 'x' } },
      alice.headers,
    );
    expect(garbage.statusCode).toBe(400);
    expect(errorCode(garbage)).toBe('bad_request');
    expect(await count('passkeys')).toBe(1);
  });

  it('signs in without a password: user verification required, challenges single-use and expiring, counters forward', async () => {
    const bob = await t.user('bob');
    const { key } = await register(bob.headers);

    const ceremony = await signinOptions();
    expect(ceremony.options).not.toHaveProperty('allowCredentials');
    const assertion = key.assert(ceremony.options);
    const ok = await post('/api/auth/passkeys/signin', {
      challengeId: ceremony.challengeId,
      response: assertion,
    });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json().user.username).toBe('bob');
    const session = bearer(ok.json().token);
    expect((await t.app.inject({ url: '/api/auth/me', headers: session })).statusCode).toBe(200);
    // It counts as two factors: it may create app passwords.
    expect((await post('/api/auth/app-passwords', { name: 'sync' }, session)).statusCode).toBe(201);
    const listed = (await t.app.inject({ url: '/api/auth/passkeys', headers: session })).json();
    expect(listed.items[0].lastUsedAt).toBe(new Date(clock).toISOString());

    const replay = await post('/api/auth/passkeys/signin', {
      challengeId: ceremony.challengeId,
      response: assertion,
    });
    expect(replay.statusCode).toBe(403);
    expect(errorCode(replay)).toBe('passkey_invalid');

    const expiring = await signinOptions();
    clock += 5 * 60_000 + 1;
    const late = await post('/api/auth/passkeys/signin', {
      challengeId: expiring.challengeId,
      response: key.assert(expiring.options),
    });
    expect(errorCode(late)).toBe('passkey_invalid');

    // A key used without its PIN or biometrics is not enough on its own.
    const noUv = await signinOptions();
    const unverified = await post('/api/auth/passkeys/signin', {
      challengeId: noUv.challengeId,
      response: key.assert(noUv.options, { userVerified: false }),
    });
    expect(errorCode(unverified)).toBe('passkey_invalid');

    // A signature made for another site's page.
    const phished = await signinOptions();
    const wrongOrigin = await post('/api/auth/passkeys/signin', {
      challengeId: phished.challengeId,
      response: key.assert(phished.options, { origin: 'https://dfs.example.net' }),
    });
    expect(errorCode(wrongOrigin)).toBe('passkey_invalid');

    // A clone of the authenticator: its counter is behind the one on record.
    const cloned = await signinOptions();
    const current = key.counter ?? 0;
    key.counter = 0;
    const clone = await post('/api/auth/passkeys/signin', {
      challengeId: cloned.challengeId,
      response: key.assert(cloned.options),
    });
    expect(errorCode(clone)).toBe('passkey_invalid');
    key.counter = current;

    // An unknown credential.
    const stranger = new SoftAuthenticator(ORIGIN, 'localhost');
    const unknownOptions = await signinOptions();
    const unknown = await post('/api/auth/passkeys/signin', {
      challengeId: unknownOptions.challengeId,
      response: stranger.assert(unknownOptions.options),
    });
    expect(errorCode(unknown)).toBe('passkey_invalid');

    // An authenticator that keeps no counter (always 0) cannot replay a signature either: the
    // challenge went with its first use.
    const bea = await t.user('bea');
    const { key: counterless } = await register(bea.headers);
    counterless.counter = null;
    const once = await signinOptions();
    const signed = counterless.assert(once.options);
    expect(
      (await post('/api/auth/passkeys/signin', { challengeId: once.challengeId, response: signed }))
        .statusCode,
    ).toBe(200);
    const replayed = await post('/api/auth/passkeys/signin', {
      challengeId: once.challengeId,
      response: signed,
    });
    expect(errorCode(replayed)).toBe('passkey_invalid');

    // None of the refusals made a session; the right signature still signs in.
    const sessions = await count('sessions');
    const last = await signinOptions();
    const fine = await post('/api/auth/passkeys/signin', {
      challengeId: last.challengeId,
      response: key.assert(last.options),
    });
    expect(fine.statusCode).toBe(200);
    expect(await count('sessions')).toBe(sessions + 1);
  });

  it('is the second factor after the password, and the answer names the factors', async () => {
    const carol = await t.user('carol');
    // Another session of carol's, signed in before she had a passkey.
    const before = bearer(
      (await post('/api/auth/signin', { username: 'carol', password: PASSWORD })).json().token,
    );
    const other = await t.user('carol2');
    const { key } = await register(other.headers);
    const { key: carolKey } = await register(carol.headers);

    const bare = await post('/api/auth/signin', { username: 'carol', password: PASSWORD });
    expect(bare.statusCode).toBe(401);
    const body = bare.json().error as { code: string; factors: string[]; passkey: Ceremony };
    expect(body.code).toBe('passkey_required');
    expect(body.factors).toEqual(['passkey']);
    expect(body.passkey.options.allowCredentials?.map((c) => c.id)).toEqual([carolKey.id]);

    // Someone else's passkey does not stand in for carol's.
    const foreign = await post('/api/auth/signin', {
      username: 'carol',
      password: PASSWORD,
      passkey: { challengeId: body.passkey.challengeId, response: key.assert(body.passkey.options) },
    });
    expect(foreign.statusCode).toBe(403);
    expect(errorCode(foreign)).toBe('passkey_invalid');

    // A wrong password never gets as far as the passkey, and gives no options away.
    const badPassword = await post('/api/auth/signin', { username: 'carol', password: 'wrong password!' });
    expect(errorCode(badPassword)).toBe('invalid_credentials');
    expect(badPassword.json().error).not.toHaveProperty('passkey');

    const next = (await post('/api/auth/signin', { username: 'carol', password: PASSWORD })).json().error as {
      passkey: Ceremony;
    };
    const ok = await post('/api/auth/signin', {
      username: 'carol',
      password: PASSWORD,
      passkey: { challengeId: next.passkey.challengeId, response: carolKey.assert(next.passkey.options) },
    });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(
      (await post('/api/auth/app-passwords', { name: 'phone' }, bearer(ok.json().token))).statusCode,
    ).toBe(201);

    // The session that signed in before the passkey existed has not passed it.
    const stale = await post('/api/auth/app-passwords', { name: 'laptop' }, before);
    expect(stale.statusCode).toBe(403);
    expect(errorCode(stale)).toBe('second_factor_required');
  });

  it('keeps totp_required for accounts with TOTP, naming the passkey beside it', async () => {
    const dave = await t.user('dave');
    const { key } = await register(dave.headers);
    // TOTP turned on straight in the database: this test is about what sign-in answers.
    await t.app.services.db('user_totp').insert({
      user_id: dave.id,
      secret: 'v1.unreadable',
      enabled_at: clock,
      last_step: null,
      created_at: clock,
    });
    const bare = await post('/api/auth/signin', { username: 'dave', password: PASSWORD });
    expect(bare.statusCode).toBe(401);
    const error = bare.json().error as { code: string; factors: string[]; passkey: Ceremony };
    expect(error.code).toBe('totp_required');
    expect(error.factors).toEqual(['totp', 'passkey']);
    const ok = await post('/api/auth/signin', {
      username: 'dave',
      password: PASSWORD,
      passkey: { challengeId: error.passkey.challengeId, response: key.assert(error.passkey.options) },
    });
    expect(ok.statusCode).toBe(200);
  });

  it('renames, and removes behind the password', async () => {
    const erin = await t.user('erin');
    const { passkey } = await register(erin.headers);
    expect(passkey.name).toBe('Passkey 1');

    const renamed = await t.app.inject({
      method: 'PATCH',
      url: `/api/auth/passkeys/${passkey.id}`,
      headers: erin.headers,
      payload: { name: 'YubiKey' },
    });
    expect(renamed.statusCode).toBe(200);
    expect(renamed.json().passkey.name).toBe('YubiKey');
    const empty = await t.app.inject({
      method: 'PATCH',
      url: `/api/auth/passkeys/${passkey.id}`,
      headers: erin.headers,
      payload: { name: '' },
    });
    expect(errorCode(empty)).toBe('bad_request');

    // Someone else's passkey is not found, whatever they send.
    const frank = await t.user('frank');
    const notTheirs = await t.app.inject({
      method: 'DELETE',
      url: `/api/auth/passkeys/${passkey.id}`,
      headers: frank.headers,
      payload: { password: PASSWORD },
    });
    expect(notTheirs.statusCode).toBe(404);

    const wrong = await t.app.inject({
      method: 'DELETE',
      url: `/api/auth/passkeys/${passkey.id}`,
      headers: erin.headers,
      payload: { password: 'not the password' },
    });
    expect(errorCode(wrong)).toBe('wrong_password');
    expect((await post('/api/auth/signin', { username: 'erin', password: PASSWORD })).statusCode).toBe(401);

    const gone = await t.app.inject({
      method: 'DELETE',
      url: `/api/auth/passkeys/${passkey.id}`,
      headers: erin.headers,
      payload: { password: PASSWORD },
    });
    expect(gone.statusCode).toBe(204);
    // No second factor left: the password alone signs in again.
    expect((await post('/api/auth/signin', { username: 'erin', password: PASSWORD })).statusCode).toBe(200);
  });

  it("goes with an administrator's two-factor reset, as TOTP does", async () => {
    const gus = await t.user('gus');
    await register(gus.headers);
    expect((await post('/api/auth/signin', { username: 'gus', password: PASSWORD })).statusCode).toBe(401);
    // alice is the first account (the admin); her session signs in with her passkey.
    const bare = (await post('/api/auth/signin', { username: 'alice', password: PASSWORD })).json().error;
    const signedIn = await post('/api/auth/signin', {
      username: 'alice',
      password: PASSWORD,
      passkey: { challengeId: bare.passkey.challengeId, response: aliceKey.assert(bare.passkey.options) },
    });
    const admin = bearer(signedIn.json().token);
    const reset = await t.app.inject({
      method: 'DELETE',
      url: `/api/admin/users/${gus.id}/two-factor`,
      headers: admin,
    });
    expect(reset.statusCode, reset.body).toBe(204);
    expect(await t.app.services.db('passkeys').where({ user_id: gus.id }).first()).toBeUndefined();
    expect((await post('/api/auth/signin', { username: 'gus', password: PASSWORD })).statusCode).toBe(200);
  });

  it('asks for the password unless the account has none (single sign-on)', async () => {
    const hal = await t.user('hal');
    const without = await post('/api/auth/passkeys/registration-options', {}, hal.headers);
    expect(without.statusCode).toBe(403);
    expect(errorCode(without)).toBe('wrong_password');
    // An account a provider made has an empty password hash: its session is what it has.
    await t.app.services.db('users').where({ id: hal.id }).update({ password_hash: '' });
    const sso = await post('/api/auth/passkeys/registration-options', {}, hal.headers);
    expect(sso.statusCode, sso.body).toBe(200);
    const { challengeId, options } = sso.json() as Ceremony;
    const key = new SoftAuthenticator(ORIGIN, 'localhost');
    const made = await post(
      '/api/auth/passkeys',
      { challengeId, response: key.register(options) },
      hal.headers,
    );
    expect(made.statusCode).toBe(201);
    const ceremony = await signinOptions();
    const signed = await post('/api/auth/passkeys/signin', {
      challengeId: ceremony.challengeId,
      response: key.assert(ceremony.options),
    });
    expect(signed.statusCode).toBe(200);
  });

  it('asks an account without a password for a recent sign-in instead, so a stolen session cannot add one', async () => {
    const jo = await t.user('joe');
    await t.app.services.db('users').where({ id: jo.id }).update({ password_hash: '' });
    // An old session (or one copied off a computer) is not proof enough for a way in that outlives it.
    clock += 11 * 60_000;
    const old = await post('/api/auth/passkeys/registration-options', {}, jo.headers);
    expect(old.statusCode, old.body).toBe(403);
    expect(errorCode(old)).toBe('second_factor_required');
    // A fresh sign-in through the provider is.
    const fresh = bearer(
      await t.app.services.auth.openSession(jo.id, true, { userAgent: null, address: null }),
    );
    expect((await post('/api/auth/passkeys/registration-options', {}, fresh)).statusCode).toBe(200);
  });

  it('keeps a session from before the passkey from setting up TOTP to pass the second factor', async () => {
    const ivy = await t.user('ivy');
    // A session left open (or stolen) before ivy's passkey; it knows the password too.
    const stale = bearer(
      (await post('/api/auth/signin', { username: 'ivy', password: PASSWORD })).json().token,
    );
    await register(ivy.headers);
    const setup = await post('/api/auth/totp', { password: PASSWORD }, stale);
    expect(setup.statusCode, setup.body).toBe(403);
    expect(errorCode(setup)).toBe('second_factor_required');
    expect(await t.app.services.db('user_totp').where({ user_id: ivy.id }).first()).toBeUndefined();
    const confirm = await post('/api/auth/totp/confirm', { code: '123456' }, stale);
    expect(errorCode(confirm)).toBe('second_factor_required');
    // The session that has the passkey still may.
    expect((await post('/api/auth/totp', { password: PASSWORD }, ivy.headers)).statusCode).toBe(201);
  });

  it('says plainly that passkeys need a host name, not an IP address', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/passkeys/signin-options',
      headers: { host: '127.0.0.1:8080' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/host name/);
  });
});
