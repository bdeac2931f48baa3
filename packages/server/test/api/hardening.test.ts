import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random, sha1 } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

/** Regression tests for the attack review: each case was reproduced against the old server. */
describe('cross-origin requests', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let cookie: string;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CORS_ORIGINS: 'https://uppy.example, http://localhost:5173' });
    alice = await t.user('alice');
    const signin = await t.app.inject({
      method: 'POST',
      url: '/api/auth/signin',
      payload: { username: 'alice', password: 'correct horse battery' },
    });
    cookie = String(signin.headers['set-cookie']).split(';')[0] as string;
  });
  afterAll(() => t.close());

  it('answers preflights from configured origins, without credentials', async () => {
    const res = await t.app.inject({
      method: 'OPTIONS',
      url: '/api/files',
      headers: {
        origin: 'https://uppy.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://uppy.example');
    expect(String(res.headers['access-control-allow-headers']).toLowerCase()).toContain('authorization');
    expect(String(res.headers['access-control-allow-methods'])).toContain('PUT');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();

    const list = await t.app.inject({
      url: '/api/files',
      headers: { ...alice.headers, origin: 'https://uppy.example' },
    });
    expect(list.statusCode).toBe(200);
    expect(list.headers['access-control-allow-origin']).toBe('https://uppy.example');
    expect(String(list.headers['access-control-expose-headers'])).toContain('Content-Range');
  });

  it('gives other origins no CORS headers', async () => {
    const res = await t.app.inject({
      method: 'OPTIONS',
      url: '/api/files',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('refuses cookie-authenticated unsafe requests from another origin of the same site', async () => {
    const plant = (headers: Record<string, string>) =>
      t.app.inject({
        method: 'POST',
        url: '/api/folders',
        headers: { cookie, 'content-type': 'application/json', ...headers },
        payload: JSON.stringify({ name: `f-${randomUUID()}` }),
      });
    // 127.0.0.1 beside localhost, a sibling subdomain: SameSite=Lax sends the cookie to both.
    const viaOrigin = await plant({ origin: 'http://127.0.0.1:9999' });
    expect(viaOrigin.statusCode).toBe(403);
    expect(viaOrigin.json().error.reason).toBe('cross_origin_cookie');
    expect((await plant({ 'sec-fetch-site': 'same-site' })).statusCode).toBe(403);
    expect((await plant({ 'sec-fetch-site': 'cross-site' })).statusCode).toBe(403);
    // Even from an origin allowed for CORS: those clients use Bearer tokens.
    expect((await plant({ origin: 'https://uppy.example' })).statusCode).toBe(403);
    // The app's own pages, and scripts without an Origin (curl), keep working.
    expect((await plant({ 'sec-fetch-site': 'same-origin' })).statusCode).toBe(201);
    expect((await plant({ origin: 'http://localhost:80' })).statusCode).toBe(201);
    expect((await plant({})).statusCode).toBe(201);
    // A Bearer token from another origin is not forgeable, so it is fine.
    const bearer = await t.app.inject({
      method: 'POST',
      url: '/api/folders',
      headers: { ...alice.headers, origin: 'https://uppy.example' },
      payload: { name: 'from uppy' },
    });
    expect(bearer.statusCode).toBe(201);

    const listed = await t.app.inject({ url: '/api/files?limit=1000', headers: alice.headers });
    expect(listed.json().total).toBe(4);
  });

  it('refuses a multipart upload planted with the cookie from another origin', async () => {
    const boundary = 'x-boundary';
    const body = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="planted.txt"\r\nContent-Type: text/plain\r\n\r\nplanted\r\n--${boundary}--\r\n`;
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/files',
      headers: {
        cookie,
        origin: 'http://127.0.0.1:9999',
        'content-type': `multipart/form-data; boundary=${boundary}`,
      },
      payload: body,
    });
    expect(res.statusCode).toBe(403);
    const list = await t.app.inject({ url: '/api/files?q=planted', headers: alice.headers });
    expect(list.json().total).toBe(0);
  });

  it('takes JSON only where JSON is expected (text/plain is what a form can forge)', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/folders',
      headers: { ...alice.headers, 'content-type': 'text/plain' },
      payload: JSON.stringify({ name: 'from a form' }),
    });
    expect(res.statusCode).toBe(415);
    expect(errorCode(res)).toBe('unsupported_media_type');
  });

  it('sets no cookie on a cross-origin sign-in (the client uses the token)', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/signin',
      headers: { origin: 'https://uppy.example' },
      payload: { username: 'alice', password: 'correct horse battery' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().token).toBeTruthy();
    expect(res.headers['set-cookie']).toBeUndefined();
  });
});

describe('request bodies and names', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) });
    alice = await t.user('alice');
  });
  afterAll(() => t.close());

  it('tells a raw-bytes POST /api/files to send multipart/form-data', async () => {
    for (const type of ['application/octet-stream', 'application/x-www-form-urlencoded']) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/files',
        headers: { ...alice.headers, 'content-type': type },
        payload: random(100),
      });
      expect(res.statusCode).toBe(415);
      expect(res.json().error.message).toContain('multipart/form-data');
    }
  });

  it('stores a chunk only when it is sent as application/octet-stream', async () => {
    const up = uploader(t, alice.headers);
    const data = Buffer.from('plain text that a text parser would alter\r\n');
    const created = await up.create({
      name: 'c.txt',
      size: data.length,
      sha1: sha1(data),
    });
    const { uploadId } = created.json();
    for (const type of ['text/plain', 'application/json']) {
      const res = await up.put(uploadId, 0, data, { 'content-type': type });
      expect(res.statusCode).toBe(415);
    }
    expect((await up.get(uploadId)).json().receivedChunks).toEqual([]);
    expect((await up.put(uploadId, 0, data)).statusCode).toBe(204);
  });

  it('refuses names with lone UTF-16 surrogates', async () => {
    for (const name of ['bad\uD800name', 'x\uDFFF']) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/folders',
        headers: alice.headers,
        payload: { name },
      });
      expect(res.statusCode).toBe(400);
      expect(errorCode(res)).toBe('invalid_name');
    }
    // A real pair is fine.
    const ok = await t.app.inject({
      method: 'POST',
      url: '/api/folders',
      headers: alice.headers,
      payload: { name: 'emoji 😀' },
    });
    expect(ok.statusCode).toBe(201);
  });

  it('caps folder depth with a 4xx, also for moves under a very deep tree', async () => {
    // Build a 300-deep chain directly: through the API it would take 300 requests.
    const now = Date.now();
    const ids: string[] = [];
    let parent = '';
    const rows = [];
    for (let i = 0; i < 300; i++) {
      const id = randomUUID();
      rows.push({
        id,
        user_id: alice.id,
        parent_id: parent,
        kind: 'folder',
        name: `d${i}`,
        live_name: `d${i}`,
        size: 0,
        status: 'active',
        created_at: now,
        updated_at: now,
      });
      ids.push(id);
      parent = id;
    }
    for (let i = 0; i < rows.length; i += 50)
      await t.app.services.db('user_files').insert(rows.slice(i, i + 50));

    const mk = (name: string, parentId?: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/folders',
        headers: alice.headers,
        payload: { name, parentId },
      });
    expect((await mk('ok', ids[254])).statusCode).toBe(201); // depth 256
    const tooDeep = await mk('no', ids[255]);
    expect(tooDeep.statusCode).toBe(400);
    expect(errorCode(tooDeep)).toBe('folder_too_deep');

    // A two-level folder moved into ids[254] (depth 255) would put its child at depth 257.
    const a = (await mk('a')).json().file;
    await mk('b', a.id);
    const move = (id: string, parentId: string) =>
      t.app.inject({
        method: 'PATCH',
        url: `/api/files/${id}`,
        headers: alice.headers,
        payload: { parentId },
      });
    const deepMove = await move(a.id, ids[254] as string);
    expect(deepMove.statusCode).toBe(400);
    expect(errorCode(deepMove)).toBe('folder_too_deep');
    expect((await move(a.id, ids[253] as string)).statusCode).toBe(200);
    // Under the bottom of the 300-deep chain: refused cleanly, not a 500.
    const c = (await mk('c')).json().file;
    const bottom = await move(c.id, ids[299] as string);
    expect(bottom.statusCode).toBe(400);
    // Into its own subtree is still its own error.
    expect(errorCode(await move(ids[0] as string, ids[10] as string))).toBe('move_into_itself');
  });

  it('answers 409 to an abort while complete runs, and leaves the upload alone', async () => {
    const up = uploader(t, alice.headers);
    const data = random(CHUNK * 2);
    const created = await up.create({
      name: 'busy.bin',
      size: data.length,
      sha1: sha1(data),
    });
    const { uploadId } = created.json();
    await up.put(uploadId, 0, data.subarray(0, CHUNK));
    await up.put(uploadId, 1, data.subarray(CHUNK));
    // Hold the upload as a running complete does (on this or another instance).
    expect(await t.app.services.repos.uploads.transition(uploadId, 'open', 'completing')).toBe(true);
    const abort = await up.abort(uploadId);
    expect(abort.statusCode).toBe(409);
    expect(errorCode(abort)).toBe('upload_busy');
    expect(Number(abort.headers['retry-after'])).toBeGreaterThan(0);
    const again = await up.complete(uploadId);
    expect(errorCode(again)).toBe('upload_busy');
    const nodes = (await t.app.inject({ url: '/api/nodes', headers: alice.headers })).json();
    expect(nodes.items.every((n: { status: string }) => n.status === 'up')).toBe(true);

    await t.app.services.repos.uploads.transition(uploadId, 'completing', 'open');
    expect((await up.complete(uploadId)).statusCode).toBe(201);
  });
});

describe('client addresses behind a proxy', () => {
  it('trusts one hop for DFS_TRUST_PROXY=true, not the client-written left-most address', async () => {
    const t = await startTestApp({ DFS_TRUST_PROXY: 'true', DFS_SIGNIN_RATE_LIMIT: '2' });
    try {
      await t.user('erin');
      const codes: number[] = [];
      for (const spoofed of ['1.1.1.1', '2.2.2.2', '3.3.3.3']) {
        const res = await t.app.inject({
          method: 'POST',
          url: '/api/auth/signin',
          // What nginx sends: the client's own header, then the address nginx saw.
          headers: { 'x-forwarded-for': `${spoofed}, 203.0.113.7` },
          payload: { username: 'erin', password: 'wrong password here' },
        });
        codes.push(res.statusCode);
      }
      expect(codes).toEqual([401, 401, 429]);
    } finally {
      await t.close();
    }
  });

  it('accepts a list of proxy addresses', async () => {
    const t = await startTestApp({ DFS_TRUST_PROXY: '127.0.0.1,10.0.0.0/8' });
    try {
      expect(t.config.trustProxy).toEqual(['127.0.0.1', '10.0.0.0/8']);
    } finally {
      await t.close();
    }
  });
});

describe('slow clients', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await startTestApp({ DFS_BODY_TIMEOUT_SECONDS: '1', DFS_MAX_CONNECTIONS_PER_IP: '8' });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as AddressInfo).port;
  });
  afterAll(() => t.close());

  const connect = () =>
    new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
      socket.on('error', reject);
    });
  const closed = (socket: net.Socket, ms: number) =>
    new Promise<boolean>((resolve) => {
      if (socket.destroyed) return resolve(true);
      const timer = setTimeout(() => resolve(false), ms);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });

  it('drops a client that drip-feeds a JSON body', async () => {
    const socket = await connect();
    socket.on('error', () => undefined);
    socket.write(
      'POST /api/auth/signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{',
    );
    const drip = setInterval(() => socket.writable && socket.write(' '), 300);
    try {
      expect(await closed(socket, 5000)).toBe(true);
    } finally {
      clearInterval(drip);
    }
  });

  it('never cuts a download that outlasts the body timeout (a GET has no body to wait for)', async () => {
    const user = await t.user('slow-reader');
    // More than the socket buffers hold, so the server is still sending when the timeout passes.
    const data = random(24 * 1024 * 1024);
    const file = await uploader(t, user.headers).upload(data, 'long.bin');
    const res = await fetch(`http://127.0.0.1:${port}/api/files/${file.id}/content`, {
      headers: user.headers,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const parts: Uint8Array[] = [];
    const first = await reader.read();
    if (first.value) parts.push(first.value);
    // Slower than DFS_BODY_TIMEOUT_SECONDS (1 s here) from the headers to the last byte.
    await new Promise((r) => setTimeout(r, 1600));
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
    }
    expect(Buffer.concat(parts).equals(data)).toBe(true);
  });

  it('lets a WebDAV PUT of any type stream for longer than the body timeout, but not a PROPFIND body', async () => {
    const user = await t.user('slow-writer');
    const secret = await t.appPassword(user.headers, 'dav');
    const auth = `Basic ${Buffer.from(`slow-writer:${secret}`).toString('base64')}`;
    const data = random(64 * 1024);
    const socket = await connect();
    socket.on('error', () => undefined);
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    socket.write(
      `PUT /dav/notes.txt HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Type: text/plain\r\nContent-Length: ${data.length}\r\n\r\n`,
    );
    // A file on a slow link: its bytes keep coming, well past DFS_BODY_TIMEOUT_SECONDS (1 s).
    for (let at = 0; at < data.length; at += 8 * 1024) {
      socket.write(data.subarray(at, at + 8 * 1024));
      await new Promise((r) => setTimeout(r, 250));
    }
    const deadline = Date.now() + 5000;
    while (!answer.includes('\r\n\r\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    expect(answer).toMatch(/^HTTP\/1\.1 201 /);
    const got = await fetch(`http://127.0.0.1:${port}/dav/notes.txt`, { headers: { authorization: auth } });
    expect(Buffer.from(await got.arrayBuffer()).equals(data)).toBe(true);

    // A PROPFIND's XML body is small: drip-fed, it loses the connection as a JSON body does.
    const drip = await connect();
    drip.on('error', () => undefined);
    drip.write(
      `PROPFIND /dav/ HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nDepth: 0\r\nContent-Type: application/xml\r\nContent-Length: 500\r\n\r\n<`,
    );
    const timer = setInterval(() => drip.writable && drip.write(' '), 300);
    try {
      expect(await closed(drip, 5000)).toBe(true);
    } finally {
      clearInterval(timer);
    }
  });

  it('caps open connections per address', async () => {
    const sockets = await Promise.all(Array.from({ length: 12 }, () => connect().catch(() => null)));
    await new Promise((r) => setTimeout(r, 300));
    const open = sockets.filter((s) => s && !s.destroyed && s.readyState === 'open');
    for (const s of sockets) s?.on('error', () => undefined);
    const results = await Promise.all(sockets.map((s) => (s ? closed(s, 500) : Promise.resolve(true))));
    expect(results.filter((wasClosed) => wasClosed).length).toBeGreaterThanOrEqual(4);
    expect(open.length).toBeGreaterThan(0);
    for (const s of sockets) s?.destroy();
    // Once they are gone, new connections are served again.
    await new Promise((r) => setTimeout(r, 100));
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(res.status).toBe(200);
  });
});
