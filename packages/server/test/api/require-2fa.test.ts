import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { SoftAuthenticator } from '../support/passkey-authenticator.ts';

const PASSWORD = 'correct horse battery';
const ORIGIN = 'http://localhost:80';

describe('DFS_REQUIRE_2FA', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ DFS_REQUIRE_2FA: 'true' });
  });
  afterAll(() => t.close());

  const post = (url: string, payload: object | undefined, headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'POST', url, headers, ...(payload ? { payload } : {}) });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const basic = (username: string, secret: string) => ({
    authorization: `Basic ${Buffer.from(`${username}:${secret}`).toString('base64')}`,
  });
  const files = (headers: Record<string, string>) => t.app.inject({ url: '/api/files', headers });

  it('lets a user without a second factor only set one up, then everything', async () => {
    const ann = await t.user('ann');
    // An app password from before the setting was turned on (the API no longer makes one now).
    const { secret } = await t.app.services.appPasswords.create(ann.id, 'old sync client');
    // A second browser, signed in before the passkey below.
    const other = bearer(
      (await post('/api/auth/signin', { username: 'ann', password: PASSWORD })).json().token,
    );

    expect((await t.app.inject({ url: '/api/auth/me', headers: ann.headers })).statusCode).toBe(200);
    const refused = await files(ann.headers);
    expect(refused.statusCode).toBe(403);
    expect(errorCode(refused)).toBe('second_factor_setup_required');
    const folder = await post('/api/files', { name: 'x', kind: 'folder', parentId: null }, ann.headers);
    expect(errorCode(folder)).toBe('second_factor_setup_required');
    const minted = await post('/api/auth/app-passwords', { name: 'new' }, ann.headers);
    expect(errorCode(minted)).toBe('second_factor_setup_required');
    // The old app password does nothing either, over the API or WebDAV.
    expect(errorCode(await files(bearer(secret)))).toBe('second_factor_setup_required');
    const dav = await t.app.inject({
      method: 'PROPFIND',
      url: '/dav/',
      headers: { ...basic('ann', secret), depth: '0' },
    });
    expect(dav.statusCode).toBe(403);
    expect(errorCode(dav)).toBe('second_factor_setup_required');
    expect(await t.app.services.db('app_passwords').where({ name: 'new' }).first()).toBeUndefined();
    // Nor over the Nextcloud endpoints, which check the app password themselves.
    const ocs = await t.app.inject({
      url: '/ocs/v2.php/cloud/user?format=json',
      headers: { ...basic('ann', secret), 'ocs-apirequest': 'true' },
    });
    expect(ocs.statusCode, ocs.body).toBe(403);
    expect(errorCode(ocs)).toBe('second_factor_setup_required');

    // Setting up a passkey is allowed, and this session has then passed it.
    const key = new SoftAuthenticator(ORIGIN, 'localhost');
    const begun = await post('/api/auth/passkeys/registration-options', { password: PASSWORD }, ann.headers);
    expect(begun.statusCode).toBe(200);
    const { challengeId, options } = begun.json();
    const made = await post(
      '/api/auth/passkeys',
      { challengeId, response: key.register(options) },
      ann.headers,
    );
    expect(made.statusCode).toBe(201);

    expect((await files(ann.headers)).statusCode).toBe(200);
    expect((await files(bearer(secret))).statusCode).toBe(200);
    expect((await post('/api/auth/app-passwords', { name: 'new' }, ann.headers)).statusCode).toBe(201);

    // The other browser never showed the passkey: it must sign in again with it.
    const stale = await files(other);
    expect(stale.statusCode).toBe(403);
    expect(errorCode(stale)).toBe('second_factor_required');
    // Nor may it set up TOTP to pass it that way (it knows the password).
    const totp = await post('/api/auth/totp', { password: PASSWORD }, other);
    expect(errorCode(totp)).toBe('second_factor_required');
    expect((await post('/api/auth/signout', undefined, other)).statusCode).toBe(204);
  });
});
