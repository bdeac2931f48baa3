import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DOMParser } from '@xmldom/xmldom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

/** What the Nextcloud clients ask before they sync: status.php, capabilities, user. */
describe('Nextcloud discovery', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let secret: string;
  const basic = (user: string, password: string) => ({
    authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
    'ocs-apirequest': 'true',
  });

  beforeAll(async () => {
    t = await startTestApp({ DFS_DEFAULT_QUOTA_BYTES: '1000000' });
    alice = await t.user('alice', 'correct horse battery');
    secret = await t.appPassword(alice.headers, 'laptop');
  });
  afterAll(() => t.close());

  it('answers status.php with 200 even to wrong credentials (the clients send them on it)', async () => {
    for (const headers of [{}, basic('alice', 'wrong'), { authorization: 'Bearer nonsense' }]) {
      const res = await t.app.inject({ url: '/status.php', headers });
      expect(res.statusCode).toBe(200);
      expect(res.headers['www-authenticate']).toBeUndefined();
      expect(res.json()).toMatchObject({
        installed: true,
        maintenance: false,
        needsDbUpgrade: false,
        productname: 'dfs',
      });
      const version = res.json().version as string;
      expect(Number(version.split('.')[0])).toBeGreaterThanOrEqual(26);
    }
  });

  it('serves capabilities as JSON in the OCS envelope, v1 (100) and v2 (200)', async () => {
    for (const [v, code] of [
      [1, 100],
      [2, 200],
    ] as const) {
      const res = await t.app.inject({
        url: `/ocs/v${v}.php/cloud/capabilities?format=json`,
        headers: basic('alice', secret),
      });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      const { ocs } = res.json();
      expect(ocs.meta).toEqual({ status: 'ok', statuscode: code, message: 'OK' });
      expect(ocs.data.capabilities.core['webdav-root']).toBe('remote.php/webdav');
      expect(ocs.data.capabilities.dav).toEqual({ chunking: '1.0' });
      expect(ocs.data.capabilities.checksums).toEqual({
        supportedTypes: ['SHA1'],
        preferredUploadType: 'SHA1',
      });
      expect(ocs.data.capabilities.files).toMatchObject({ undelete: true, versioning: true });
      // Advertising bulk upload or locking would make the clients use endpoints dfs lacks.
      expect(JSON.stringify(ocs.data)).not.toMatch(/bulkupload|locking/);
    }
    // An Accept of JSON is enough, without format=json.
    const accepted = await t.app.inject({
      url: '/ocs/v2.php/cloud/capabilities',
      headers: { ...basic('alice', secret), accept: 'application/json' },
    });
    expect(accepted.json().ocs.meta.statuscode).toBe(200);
  });

  it('serves capabilities as XML without format=json', async () => {
    for (const [v, code] of [
      [1, '100'],
      [2, '200'],
    ] as const) {
      const res = await t.app.inject({
        url: `/ocs/v${v}.php/cloud/capabilities`,
        headers: basic('alice', secret),
      });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/xml/);
      const doc = new DOMParser().parseFromString(res.body, 'text/xml');
      const text = (tag: string) => doc.getElementsByTagName(tag)[0]?.textContent;
      expect(doc.documentElement?.nodeName).toBe('ocs');
      expect(text('statuscode')).toBe(code);
      expect(text('chunking')).toBe('1.0');
      expect(text('preferredUploadType')).toBe('SHA1');
      const types = doc.getElementsByTagName('supportedTypes')[0]!;
      expect(types.getElementsByTagName('element')[0]?.textContent).toBe('SHA1');
      expect(text('undelete')).toBe('1');
      expect(text('versioning')).toBe('1');
    }
  });

  it('answers the user with its id and its quota from dfs usage', async () => {
    const put = await t.app.inject({
      method: 'PUT',
      url: '/dav/hello.txt',
      headers: basic('alice', secret),
      payload: 'x'.repeat(12_345),
    });
    expect(put.statusCode).toBe(201);
    for (const v of [1, 2]) {
      const res = await t.app.inject({
        url: `/ocs/v${v}.php/cloud/user?format=json`,
        headers: basic('alice', secret),
      });
      expect(res.statusCode).toBe(200);
      const data = res.json().ocs.data;
      expect(data).toMatchObject({ id: 'alice', 'display-name': 'alice', displayname: 'alice', email: null });
      const usage = (await t.app.inject({ url: '/api/auth/me', headers: alice.headers })).json().usage;
      expect(usage.usedBytes).toBeGreaterThanOrEqual(12_345);
      expect(data.quota).toEqual({
        free: 1_000_000 - usage.usedBytes,
        used: usage.usedBytes,
        total: 1_000_000,
        relative: Math.round((usage.usedBytes / 1_000_000) * 10_000) / 100,
        quota: 1_000_000,
      });
    }
  });

  it('refuses the account password and bad app passwords with 401 and a Basic challenge', async () => {
    for (const url of ['/ocs/v1.php/cloud/capabilities?format=json', '/ocs/v2.php/cloud/user?format=json']) {
      for (const headers of [
        basic('alice', 'correct horse battery'),
        basic('alice', `${secret}x`),
        basic('bob', secret),
        {},
      ]) {
        const res = await t.app.inject({ url, headers });
        expect(res.statusCode).toBe(401);
        expect(res.headers['www-authenticate']).toMatch(/^Basic realm="dfs"/);
      }
    }
  });

  it('takes the calls without the OCS-APIRequest header too', async () => {
    const res = await t.app.inject({
      url: '/ocs/v1.php/cloud/user?format=json',
      headers: { authorization: basic('alice', secret).authorization },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().ocs.data.id).toBe('alice');
  });
});

/**
 * Debian's `nextcloudcmd` (the desktop client's sync engine) on a real socket, signed in with an
 * app password from Login Flow v2: it must get through discovery. What follows discovery (the
 * WebDAV tree at /remote.php/dav/files/<user>/) is asserted by the WebDAV tests, not here.
 */
// The protocol is the same on either database; the client runs once.
describe.skipIf(process.env.DFS_TEST_DB === 'mysql')('nextcloudcmd against discovery', () => {
  let t: TestApp;
  let base: string;
  let tmp: string;
  let secret: string;
  const seen: Array<{ method: string; url: string; status: number; basic: boolean }> = [];

  beforeAll(async () => {
    t = await startTestApp();
    t.app.addHook('onResponse', async (request, reply) => {
      seen.push({
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        basic: request.headers.authorization?.startsWith('Basic ') ?? false,
      });
    });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    const alice = await t.user('alice', 'correct horse battery');
    // The app password comes the way the desktop app gets one: Login Flow v2.
    const flow = (await (await fetch(`${base}/index.php/login/v2`, { method: 'POST' })).json()) as {
      poll: { token: string; endpoint: string };
      login: string;
    };
    const flowToken = flow.login.split('/').at(-1)!;
    const approved = await t.app.inject({
      method: 'POST',
      url: `/api/login-flows/${flowToken}/approve`,
      headers: alice.headers,
    });
    expect(approved.statusCode).toBe(200);
    const polled = await fetch(flow.poll.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${flow.poll.token}`,
    });
    expect(polled.status).toBe(200);
    secret = ((await polled.json()) as { appPassword: string }).appPassword;
    tmp = await mkdtemp(path.join(os.tmpdir(), 'dfs-nextcloudcmd-'));
  });
  afterAll(async () => {
    await t.close();
    await rm(tmp, { recursive: true, force: true });
  });

  /** One run; its exit code is not asserted (the WebDAV part is not this test's). */
  const sync = async (password: string, dir: string) => {
    await mkdir(path.join(tmp, dir), { recursive: true });
    seen.length = 0;
    await new Promise<void>((resolve) =>
      execFile(
        'nextcloudcmd',
        [
          '--non-interactive',
          '--max-sync-retries',
          '1',
          '-u',
          'alice',
          '-p',
          password,
          path.join(tmp, dir),
          base,
        ],
        { env: { ...process.env, HOME: tmp }, timeout: 60_000 },
        () => resolve(),
      ),
    );
    return seen.map((r) => `${r.method} ${r.url.split('?')[0]} ${r.status}`);
  };

  it('gets status.php, the capabilities and the user with 200, then asks for the WebDAV tree', async () => {
    const log = await sync(secret, 'ok');
    expect(log).toContain('GET /status.php 200');
    expect(log).toContain('GET /ocs/v1.php/cloud/capabilities 200');
    expect(log).toContain('GET /ocs/v1.php/cloud/user 200');
    // The client sends its credentials along from the very first request.
    expect(seen.find((r) => r.url === '/status.php')?.basic).toBe(true);
    // Discovery passed: the client went on to list the files of the DAV user the server named.
    expect(
      seen.some((r) => r.method === 'PROPFIND' && r.url.startsWith('/remote.php/dav/files/alice/')),
    ).toBe(true);
  }, 90_000);

  it('is stopped at the capabilities with the account password', async () => {
    const log = await sync('correct horse battery', 'refused');
    expect(log).toContain('GET /status.php 200');
    expect(log).toContain('GET /ocs/v1.php/cloud/capabilities 401');
    expect(seen.some((r) => r.method === 'PROPFIND')).toBe(false);
  }, 90_000);
});
