import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as tus from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';

const MiB = 1024 * 1024;
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

/** tus-js-client, the reference client, against the app on a real socket. */
describe('tus-js-client (Node) against /api/tus/', () => {
  let t: TestApp;
  let endpoint: string;
  let secret: string;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(MiB) });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    endpoint = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}/api/tus/`;
    const alice = await t.user('alice');
    // A program authenticates with an app password, as the README shows.
    secret = await t.appPassword(alice.headers, 'tus test');
  });
  afterAll(() => t.close());

  const upload = (data: Buffer, options: Partial<tus.UploadOptions>) =>
    new tus.Upload(data, {
      endpoint,
      headers: { authorization: `Bearer ${secret}` },
      metadata: { filename: 'from tus-js-client.bin' },
      // Not a multiple of the server's 1 MiB chunks: PATCHes end mid-chunk.
      chunkSize: 700 * 1024,
      retryDelays: [],
      ...options,
    });

  it('uploads, is interrupted, resumes from the server’s offset, and the file has the right SHA-1', async () => {
    const data = random(3 * MiB + 4321);
    let url = '';
    // First run: stop after two PATCHes.
    await new Promise<void>((resolve, reject) => {
      let chunks = 0;
      const first = upload(data, {
        onChunkComplete: () => {
          chunks++;
          if (chunks === 2) {
            url = first.url ?? '';
            void first.abort().then(resolve, reject);
          }
        },
        onError: reject,
        onSuccess: () => reject(new Error('should have been interrupted')),
      });
      first.start();
    });
    expect(url).toMatch(/\/api\/tus\/[0-9a-f-]{36}$/);
    const offsets: number[] = [];
    // Second run: the same upload URL; the client asks HEAD where to go on.
    await new Promise<void>((resolve, reject) => {
      const second = upload(data, {
        uploadUrl: url,
        onChunkComplete: (_chunk, accepted) => offsets.push(accepted),
        onError: reject,
        onSuccess: () => resolve(),
      });
      second.start();
    });
    // It went on from 1.4 MiB, not from zero.
    expect(offsets[0]).toBe(3 * 700 * 1024);
    const alice = await t.app.inject({
      method: 'GET',
      url: '/api/files?q=from%20tus-js-client',
      headers: { authorization: `Bearer ${secret}` },
    });
    expect(alice.json().items).toMatchObject([{ size: data.length, sha1: sha1(data) }]);
  });

  it('stores an empty file once and answers its creation 201 (a 500 made clients retry it into " (1)")', async () => {
    const errors: unknown[] = [];
    const send = () =>
      new Promise<void>((resolve, reject) => {
        upload(Buffer.alloc(0), {
          metadata: { filename: 'empty by tus.txt' },
          onError: (err) => {
            errors.push(err);
            reject(err);
          },
          onSuccess: () => resolve(),
        }).start();
      });
    await send();
    expect(errors).toEqual([]);
    const list = async () =>
      (
        await t.app.inject({
          method: 'GET',
          url: '/api/files?q=empty%20by%20tus',
          headers: { authorization: `Bearer ${secret}` },
        })
      ).json().items as { name: string; size: number }[];
    expect(await list()).toMatchObject([{ name: 'empty by tus.txt', size: 0 }]);
  });
});
