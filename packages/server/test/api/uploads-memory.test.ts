import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { chunkChecksum } from '../support/bytes.ts';

const CHUNK = 1024 * 1024;

/** A request whose headers and all but the last byte of its body are sent, then nothing. */
function stalled(port: number, head: string, bodyBytes: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  let answer = '';
  socket.on('data', (d) => {
    answer += d.toString('latin1');
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(head);
  socket.write(Buffer.alloc(bodyBytes));
  return { socket, closed, answer: () => answer };
}

/** Upload bodies that stop arriving: bounded in memory, timed out, and the memory given back. */
describe('stalled upload bodies', () => {
  let t: TestApp;
  let port: number;
  const users: { id: string; headers: Record<string, string> }[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      DFS_CHUNK_SIZE: String(CHUNK),
      DFS_UPLOAD_MEMORY_PER_USER_BYTES: String(4 * CHUNK),
      DFS_UPLOAD_MEMORY_BYTES: String(6 * CHUNK),
      DFS_UPLOAD_IDLE_SECONDS: '1.5',
    });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as AddressInfo).port;
    users.push(await t.user('alice'), await t.user('bob'));
  });
  afterAll(() => t.close());

  const openUpload = async (who: (typeof users)[number]) =>
    (
      await t.app.inject({
        method: 'POST',
        url: '/api/uploads',
        headers: who.headers,
        payload: { name: 'held.bin', size: 8 * CHUNK },
      })
    ).json().uploadId as string;

  const chunkPut = (who: (typeof users)[number], uploadId: string, index: number) =>
    stalled(
      port,
      `PUT /api/uploads/${uploadId}/chunks/${index} HTTP/1.1\r\nHost: x\r\nAuthorization: ${who.headers.authorization}\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Digest: crc32c=:AAAAAA==:\r\nContent-Length: ${CHUNK}\r\n\r\n`,
      CHUNK - 1,
    );

  const tusPatch = (who: (typeof users)[number], id: string) =>
    stalled(
      port,
      `PATCH /api/tus/${id} HTTP/1.1\r\nHost: x\r\nAuthorization: ${who.headers.authorization}\r\nTus-Resumable: 1.0.0\r\n` +
        `Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${2 * CHUNK}\r\n` +
        `Upload-Checksum: sha1 ${Buffer.alloc(20).toString('base64')}\r\n\r\n`,
      2 * CHUNK - 1,
    );

  const until = async (what: () => boolean, ms = 5_000) => {
    const end = Date.now() + ms;
    while (!what() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return what();
  };

  it('holds at most the per-user and total bounds, refuses the rest with 429, and frees all after the idle timeout', async () => {
    const memory = t.app.services.uploads.memory;
    const [alice, bob] = users as [(typeof users)[number], (typeof users)[number]];
    const aliceUpload = await openUpload(alice);
    const bobUpload = await openUpload(bob);
    const tus = await t.app.inject({
      method: 'POST',
      url: '/api/tus/',
      headers: {
        ...bob.headers,
        'tus-resumable': '1.0.0',
        'upload-length': String(4 * CHUNK),
        'upload-metadata': `filename ${Buffer.from('t.bin').toString('base64')}`,
      },
    });
    const tusId = String(tus.headers.location).split('/').pop() as string;

    // Alice: five chunk PUTs; four fit her bound, the fifth is refused at once.
    const mine = [0, 1, 2, 3, 4].map((i) => chunkPut(alice, aliceUpload, i));
    expect(await until(() => mine.filter((r) => r.answer().startsWith('HTTP/1.1 429')).length === 1)).toBe(
      true,
    );
    expect(await until(() => memory.heldBytes(alice.id) === 4 * CHUNK)).toBe(true);
    // Bob: a tus PATCH with a checksum (held whole) and chunk PUTs, until the total bound.
    const patch = tusPatch(bob, tusId);
    expect(await until(() => memory.heldBytes() === 6 * CHUNK - 1)).toBe(true);
    const his = [0, 1].map((i) => chunkPut(bob, bobUpload, i));
    expect(await until(() => his.every((r) => r.answer().startsWith('HTTP/1.1 429')))).toBe(true);
    expect(memory.heldBytes()).toBeLessThanOrEqual(6 * CHUNK);

    // Nothing more arrives: every held body times out, its connection closes, its memory is back.
    const held = [...mine.filter((r) => r.answer() === ''), patch];
    expect(held).toHaveLength(5);
    await Promise.all(held.map((r) => r.closed));
    expect(await until(() => memory.heldBytes() === 0)).toBe(true);
    for (const r of [...mine, ...his, patch]) r.socket.destroy();

    // And the uploads go on: a full chunk is taken again.
    const ok = await t.app.inject({
      method: 'PUT',
      url: `/api/uploads/${aliceUpload}/chunks/0`,
      headers: {
        ...alice.headers,
        'content-type': 'application/octet-stream',
        ...chunkChecksum(Buffer.alloc(CHUNK, 1)),
      },
      payload: Buffer.alloc(CHUNK, 1),
    });
    expect(ok.statusCode, ok.body).toBe(204);
  });
});
