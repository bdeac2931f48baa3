import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';

const XML = '<?xml version="1.0" encoding="utf-8"?>';
const lockinfo = (depth = 'exclusive') =>
  `${XML}<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:${depth}/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>tester</D:owner></D:lockinfo>`;

async function davUser(t: TestApp, name: string) {
  const user = await t.user(name);
  const secret = await t.appPassword(user.headers, 'dav');
  const basic = { authorization: `Basic ${Buffer.from(`${name}:${secret}`).toString('base64')}` };
  const dav = (method: string, url: string, headers: Record<string, string> = {}, body?: string) =>
    t.app.inject({
      method: method as 'GET',
      url,
      headers: { ...basic, ...(body ? { 'content-type': 'application/xml' } : {}), ...headers },
      ...(body !== undefined ? { payload: body } : {}),
    });
  const api = (method: string, url: string, payload?: unknown) =>
    t.app.inject({
      method: method as 'GET',
      url,
      headers: user.headers,
      ...(payload !== undefined ? { payload: payload as object } : {}),
    });
  /** The id of the entry named `name` in the root. */
  const idOf = async (name: string) =>
    ((await api('GET', '/api/files')).json().items as Array<{ id: string; name: string }>).find(
      (e) => e.name === name,
    )!.id;
  return { user, dav, api, idOf };
}

describe('WebDAV locks hold for the JSON API too', () => {
  let t: TestApp;
  let u: Awaited<ReturnType<typeof davUser>>;

  beforeAll(async () => {
    t = await startTestApp();
    u = await davUser(t, 'locker');
  });
  afterAll(() => t.close());

  it('refuses renaming, moving and deleting a locked file with 423 locked, until it is unlocked', async () => {
    expect((await u.dav('PUT', '/dav/report.txt', { 'content-type': 'text/plain' }, 'r')).statusCode).toBe(
      201,
    );
    expect((await u.dav('MKCOL', '/dav/elsewhere')).statusCode).toBe(201);
    const lock = await u.dav('LOCK', '/dav/report.txt', { depth: '0' }, lockinfo());
    expect(lock.statusCode).toBe(200);
    const id = await u.idOf('report.txt');
    const folder = await u.idOf('elsewhere');

    const rename = await u.api('PATCH', `/api/files/${id}`, { name: 'renamed.txt' });
    expect(rename.statusCode).toBe(423);
    expect(errorCode(rename)).toBe('locked');
    expect(rename.json().error.message).toContain('/report.txt');
    expect((await u.api('PATCH', `/api/files/${id}`, { parentId: folder })).statusCode).toBe(423);
    expect((await u.api('DELETE', `/api/files/${id}`)).statusCode).toBe(423);
    // Nothing changed, and WebDAV still finds it where it was.
    expect((await u.api('GET', `/api/files/${id}`)).json().file.name).toBe('report.txt');
    expect((await u.dav('HEAD', '/dav/report.txt')).statusCode).toBe(200);

    const token = lock.headers['lock-token'] as string;
    expect((await u.dav('UNLOCK', '/dav/report.txt', { 'lock-token': token })).statusCode).toBe(204);
    expect((await u.api('PATCH', `/api/files/${id}`, { name: 'renamed.txt' })).statusCode).toBe(200);
  });

  it('refuses writes inside a folder locked with depth infinity, and moving that folder', async () => {
    expect((await u.dav('MKCOL', '/dav/shared')).statusCode).toBe(201);
    expect((await u.dav('PUT', '/dav/shared/in.txt', { 'content-type': 'text/plain' }, 'i')).statusCode).toBe(
      201,
    );
    expect((await u.dav('MKCOL', '/dav/free')).statusCode).toBe(201);
    expect((await u.dav('PUT', '/dav/free/out.txt', { 'content-type': 'text/plain' }, 'o')).statusCode).toBe(
      201,
    );
    const lock = await u.dav('LOCK', '/dav/shared', { depth: 'infinity' }, lockinfo());
    expect(lock.statusCode).toBe(200);
    const shared = await u.idOf('shared');
    const free = await u.idOf('free');
    const inner = (
      (await u.api('GET', `/api/files?parentId=${shared}`)).json().items as Array<{ id: string }>
    )[0]!.id;
    const outer = (
      (await u.api('GET', `/api/files?parentId=${free}`)).json().items as Array<{ id: string }>
    )[0]!.id;

    expect((await u.api('PATCH', `/api/files/${inner}`, { name: 'x.txt' })).statusCode).toBe(423);
    expect((await u.api('DELETE', `/api/files/${shared}`)).statusCode).toBe(423);
    expect((await u.api('PATCH', `/api/files/${shared}`, { name: 'other' })).statusCode).toBe(423);
    // Moving a file into the locked folder writes there too.
    expect((await u.api('PATCH', `/api/files/${outer}`, { parentId: shared })).statusCode).toBe(423);
    expect((await u.api('POST', '/api/folders', { name: 'new', parentId: shared })).statusCode).toBe(423);
    // A folder that merely holds nothing locked is free.
    expect((await u.api('PATCH', `/api/files/${free}`, { name: 'free2' })).statusCode).toBe(200);

    // Another user's locks are theirs alone.
    const other = await davUser(t, 'other');
    expect((await other.api('POST', '/api/folders', { name: 'shared' })).statusCode).toBe(201);
    expect((await other.api('DELETE', `/api/files/${await other.idOf('shared')}`)).statusCode).toBe(204);
  });
});

describe('COPY and MOVE to another server', () => {
  it('answers 502 for a Destination on another host, port or scheme; its own origin works', async () => {
    const t = await startTestApp();
    try {
      const u = await davUser(t, 'mover');
      expect(
        (await u.dav('PUT', '/dav/a.txt', { 'content-type': 'text/plain', host: 'drive.test:8080' }, 'a'))
          .statusCode,
      ).toBe(201);
      for (const destination of [
        'http://evil.test:8080/dav/b.txt',
        'http://drive.test:9090/dav/b.txt',
        'https://drive.test:8080/dav/b.txt',
      ]) {
        for (const method of ['COPY', 'MOVE']) {
          const res = await u.dav(method, '/dav/a.txt', { host: 'drive.test:8080', destination });
          expect(res.statusCode, `${method} ${destination}`).toBe(502);
          expect(errorCode(res)).toBe('bad_gateway');
        }
      }
      expect((await u.dav('HEAD', '/dav/b.txt')).statusCode).toBe(404);
      const same = await u.dav('COPY', '/dav/a.txt', {
        host: 'drive.test:8080',
        destination: 'http://drive.test:8080/dav/b.txt',
      });
      expect(same.statusCode).toBe(201);
      const relative = await u.dav('COPY', '/dav/a.txt', {
        host: 'drive.test:8080',
        destination: '/dav/c.txt',
      });
      expect(relative.statusCode).toBe(201);
    } finally {
      await t.close();
    }
  });

  it('takes the public origin, and a trusted proxy’s forwarded host and scheme, as its own', async () => {
    const t = await startTestApp({ DFS_TRUST_PROXY: 'true', DFS_PUBLIC_URL: 'https://drive.example' });
    try {
      const u = await davUser(t, 'proxied');
      expect((await u.dav('PUT', '/dav/a.txt', { 'content-type': 'text/plain' }, 'a')).statusCode).toBe(201);
      const via = (destination: string, headers: Record<string, string> = {}) =>
        u.dav('COPY', '/dav/a.txt', { host: '127.0.0.1:8080', destination, overwrite: 'T', ...headers });
      expect((await via('https://drive.example/dav/b.txt')).statusCode).toBe(201);
      // nginx's `Host $host` drops the port: behind it, the host and scheme must still match.
      const nginx = { 'x-forwarded-host': 'files.lan', 'x-forwarded-proto': 'http' };
      expect((await via('http://files.lan:8443/dav/c.txt', nginx)).statusCode).toBe(201);
      expect((await via('https://files.lan:8443/dav/d.txt', nginx)).statusCode).toBe(502);
      expect((await via('http://other.lan:8443/dav/d.txt', nginx)).statusCode).toBe(502);
    } finally {
      await t.close();
    }
  });
});
