import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { multipartForm } from '../support/uploads.ts';

const MiB = 1024 * 1024;
const QUOTA = 10 * MiB;

/** A body of `total` bytes that counts what the server pulled from it. */
function counted(total: number, prefix: Buffer = Buffer.alloc(0), suffix: Buffer = Buffer.alloc(0)) {
  const block = random(MiB);
  const state = { pulled: 0 };
  let sent = 0;
  const stream = new Readable({
    read() {
      if (sent === 0 && prefix.length > 0) this.push(prefix);
      if (sent >= total) {
        if (suffix.length > 0) this.push(suffix);
        this.push(null);
        return;
      }
      const piece = block.subarray(0, Math.min(MiB, total - sent));
      sent += piece.length;
      state.pulled = sent;
      this.push(piece);
    },
  });
  return { stream, state };
}

/** One-request bodies of unknown or untrusted size stop at the quota, not at their end. */
describe('a streamed upload over the quota', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let basic: string;

  beforeAll(async () => {
    t = await startTestApp({ DFS_DEFAULT_QUOTA_BYTES: String(QUOTA) });
    alice = await t.user('alice');
    const secret = await t.appPassword(alice.headers, 'dav');
    basic = `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}`;
  });
  afterAll(() => t.close());

  const usage = async () =>
    (await t.app.inject({ url: '/api/auth/me', headers: alice.headers })).json().usage.usedBytes as number;

  it('WebDAV PUT without Content-Length: 413 once the remaining quota is passed', async () => {
    const body = counted(150 * MiB);
    const res = await t.app.inject({
      method: 'PUT',
      url: '/dav/huge.bin',
      headers: { authorization: basic, 'transfer-encoding': 'chunked' },
      payload: body.stream,
    });
    expect(res.statusCode).toBe(413);
    expect(errorCode(res)).toBe('quota_exceeded');
    // Read up to the quota and a little past it (stream buffers), never the whole body.
    expect(body.state.pulled).toBeLessThan(QUOTA + 8 * MiB);
    expect(await usage()).toBe(0);
  });

  it('a form upload: 413 once the remaining quota is passed', async () => {
    const form = multipartForm('huge.bin', Buffer.alloc(0));
    const tail = Buffer.from('\r\n------dfs-test-boundary--\r\n');
    const head = form.payload.subarray(0, form.payload.length - tail.length);
    const body = counted(150 * MiB, head, tail);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/files',
      headers: { ...alice.headers, ...form.headers },
      payload: body.stream,
    });
    expect(res.statusCode).toBe(413);
    expect(errorCode(res)).toBe('quota_exceeded');
    expect(body.state.pulled).toBeLessThan(QUOTA + 8 * MiB);
    expect(await usage()).toBe(0);
  });

  it('answers the WebDAV client over a real socket (413, not a reset)', async () => {
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as AddressInfo;
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          method: 'PUT',
          path: '/dav/socket.bin',
          headers: { authorization: basic },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      const block = random(MiB);
      let sent = 0;
      const pump = () => {
        while (sent < 64 * MiB) {
          sent += MiB;
          if (!req.write(block)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    expect(status).toBe(413);
  });
});
