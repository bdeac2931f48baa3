import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ONE_BLOCK_MAX } from '../../src/services/hashing/blocks.ts';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { chunksOf, crc32cDigest, random, sha1 } from '../support/bytes.ts';
import { multipartForm, uploader } from '../support/uploads.ts';

/**
 * The server's hash budget (docs/ARCHITECTURE.md), counted: every byte hashed by node:crypto and
 * by the CRC library is tallied per algorithm while a content goes in through each upload route
 * and comes out through a verified download. Digest threads are off (DFS_DIGEST_THREADS=0) so
 * that the worker's share runs here and is counted too: it is the same module.
 */
const hashed = vi.hoisted(() => ({ bytes: new Map<string, number>() }));

vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  type Hash = ReturnType<typeof real.createHash>;
  const counted = (algorithm: string, hash: Hash): Hash =>
    new Proxy(hash, {
      get(target, property, receiver) {
        if (property === 'update') {
          return (data: string | NodeJS.ArrayBufferView, encoding?: BufferEncoding) => {
            const length = typeof data === 'string' ? Buffer.byteLength(data, encoding) : data.byteLength;
            hashed.bytes.set(algorithm, (hashed.bytes.get(algorithm) ?? 0) + length);
            target.update(data as string, encoding as BufferEncoding);
            return receiver;
          };
        }
        if (property === 'copy') return () => counted(algorithm, target.copy());
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  const createHash = (algorithm: string, options?: Parameters<typeof real.createHash>[1]) =>
    counted(algorithm.toLowerCase(), real.createHash(algorithm, options));
  return { ...real, createHash, default: { ...real, createHash } };
});

vi.mock('@node-rs/crc32', async (importOriginal) => {
  const real = await importOriginal<typeof import('@node-rs/crc32')>();
  const crc32c = (input: Uint8Array | string, initial?: number | null) => {
    const length = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
    hashed.bytes.set('crc32c', (hashed.bytes.get('crc32c') ?? 0) + length);
    return real.crc32c(input, initial);
  };
  return { ...real, crc32c };
});

const MiB = 1024 * 1024;
const CHUNK = MiB;
/** Room for the small hashes beside the content's (ETags, ids, a proof, the block tables' roots). */
const SLACK = 16 * 1024;

const passes = (algorithm: string, size: number) => (hashed.bytes.get(algorithm) ?? 0) / size;

/** Exactly one pass of `algorithm` over `size` bytes, give or take the small hashes. */
function expectOnePass(algorithm: string, size: number) {
  const bytes = hashed.bytes.get(algorithm) ?? 0;
  expect(bytes, `${algorithm}: ${passes(algorithm, size).toFixed(2)} passes`).toBeGreaterThanOrEqual(size);
  expect(bytes, `${algorithm}: ${passes(algorithm, size).toFixed(2)} passes`).toBeLessThanOrEqual(
    size + SLACK,
  );
}

function expectNoPass(algorithm: string) {
  expect(hashed.bytes.get(algorithm) ?? 0, `${algorithm} bytes`).toBeLessThanOrEqual(SLACK);
}

/** The budget of an upload: one SHA-1 pass, one block-SHA-256 pass, no MD5; a CRC only if sent. */
function expectUploadBudget(size: number, crc: boolean) {
  expectOnePass('sha1', size);
  expectOnePass('sha256', size);
  expect(hashed.bytes.get('md5') ?? 0).toBe(0);
  if (crc) expectOnePass('crc32c', size);
  else expect(hashed.bytes.get('crc32c') ?? 0).toBe(0);
}

describe('the hash budget, counted on every upload route', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let basic: Record<string, string>;
  const SIZE = 3 * MiB + 12_345;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK), DFS_DIGEST_THREADS: '0' });
    alice = await t.user('alice');
    const secret = await t.appPassword(alice.headers);
    basic = { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}` };
  });
  afterAll(async () => {
    await t.close();
  });
  beforeEach(() => {
    hashed.bytes.clear();
  });

  it('chunked upload (PUT with a CRC-32C): SHA-1 once, block SHA-256 once, the CRC once, no MD5', async () => {
    const data = random(SIZE);
    // What the client computes is worked out first: only the server's hashing is counted.
    const hash = sha1(data);
    const chunks = chunksOf(data, CHUNK).map((bytes) => ({ bytes, digest: crc32cDigest(bytes) }));
    const up = uploader(t, alice.headers);
    hashed.bytes.clear();
    const { uploadId } = (await up.create({ name: 'chunked.bin', size: SIZE, sha1: hash })).json();
    for (const [i, chunk] of chunks.entries()) {
      expect((await up.put(uploadId, i, chunk.bytes, { 'content-digest': chunk.digest })).statusCode).toBe(
        204,
      );
    }
    const done = await up.complete(uploadId);
    expect(done.statusCode, done.body).toBe(201);
    expectUploadBudget(SIZE, true);
    expect(done.json().file.sha1).toBe(hash);
  });

  it('one-request upload, small (in memory) and big (streamed chunk by chunk to the nodes)', async () => {
    for (const size of [300_000, SIZE]) {
      hashed.bytes.clear();
      const data = random(size);
      const form = multipartForm(`single-${size}.bin`, data);
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/files',
        payload: form.payload,
        headers: { ...alice.headers, ...form.headers },
      });
      expect(res.statusCode, res.body).toBe(201);
      expectUploadBudget(size, false);
    }
  });

  it('batch upload of small files', async () => {
    const files = [random(10_000), random(200_000), random(MiB + 5)];
    const boundary = '----dfs-budget';
    const payload = Buffer.concat(
      files.flatMap((bytes, i) => [
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="b${i}.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
        ),
        bytes,
        Buffer.from('\r\n'),
      ]),
    );
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/files/batch',
      payload: Buffer.concat([payload, Buffer.from(`--${boundary}--\r\n`)]),
      headers: { ...alice.headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
    });
    expect(res.statusCode, res.body).toBe(201);
    expectUploadBudget(
      files.reduce((sum, f) => sum + f.length, 0),
      false,
    );
  });

  it('tus (PATCHes of uneven sizes)', async () => {
    const data = random(SIZE);
    const tus = { ...alice.headers, 'tus-resumable': '1.0.0' };
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/tus/',
      headers: {
        ...tus,
        'upload-length': String(SIZE),
        'upload-metadata': `filename ${Buffer.from('tus.bin').toString('base64')}`,
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    const url = new URL(String(created.headers.location), 'http://x').pathname;
    for (const [from, to] of [
      [0, 700_000],
      [700_000, 2 * MiB + 3],
      [2 * MiB + 3, SIZE],
    ] as const) {
      const res = await t.app.inject({
        method: 'PATCH',
        url,
        headers: { ...tus, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(from) },
        payload: data.subarray(from, to),
      });
      expect(res.statusCode, res.body).toBe(204);
    }
    expectUploadBudget(SIZE, false);
  });

  it('WebDAV PUT', async () => {
    const data = random(SIZE);
    const res = await t.app.inject({ method: 'PUT', url: '/dav/dav.bin', headers: basic, payload: data });
    expect(res.statusCode, res.body).toBe(201);
    expectUploadBudget(SIZE, false);
  });

  it('Nextcloud chunked upload v2', async () => {
    const data = random(SIZE);
    const dav = (method: string, url: string, headers: Record<string, string> = {}, payload?: Buffer) =>
      t.app.inject({
        method: method as 'GET',
        url,
        headers: { ...basic, ...headers },
        ...(payload ? { payload } : {}),
      });
    const dir = '/remote.php/dav/uploads/alice/4242';
    expect((await dav('MKCOL', dir, { 'oc-total-length': String(SIZE) })).statusCode).toBe(201);
    const cuts = [0, MiB + 100, 2 * MiB + 5, SIZE];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const piece = data.subarray(cuts[i], cuts[i + 1]);
      const name = String(i + 1).padStart(5, '0');
      expect((await dav('PUT', `${dir}/${name}`, {}, piece)).statusCode).toBe(201);
    }
    const move = await dav('MOVE', `${dir}/.file`, {
      destination: 'http://localhost/remote.php/dav/files/alice/nc.bin',
      'oc-total-length': String(SIZE),
    });
    expect(move.statusCode, move.body).toBe(201);
    expectUploadBudget(SIZE, false);
  });

  it('known content is checked by its root, not by another pass; a verified download is one block-SHA-256 pass', async () => {
    const data = random(SIZE);
    const hash = sha1(data);
    const file = await uploader(t, alice.headers).upload(data, 'first.bin');
    // The same bytes through WebDAV: hashed once as they arrive, then matched by SHA-1 and root.
    hashed.bytes.clear();
    expect(
      (await t.app.inject({ method: 'PUT', url: '/dav/again.bin', headers: basic, payload: data }))
        .statusCode,
    ).toBe(201);
    expectUploadBudget(SIZE, false);

    hashed.bytes.clear();
    const res = await t.app.inject({ url: `/api/files/${file.id}/content`, headers: alice.headers });
    expect(res.statusCode).toBe(200);
    expectOnePass('sha256', SIZE);
    expectNoPass('sha1');
    expect(hashed.bytes.get('md5') ?? 0).toBe(0);
    expect(sha1(res.rawPayload)).toBe(hash);
  });

  it('an older content is compared by a root worked out once from its bytes; another root is a collision', async () => {
    const data = random(3 * MiB);
    const file = await uploader(t, alice.headers).upload(data, 'older.bin');
    const { repos, db } = t.app.services;
    const content = await repos.contents.findBySha1(file.sha1);
    const root = content?.root;
    expect(root).toMatch(/^[0-9a-f]{64}$/);
    // As stored before roots: a whole-file SHA-256, a one-block table, no root.
    await db('contents')
      .where({ id: content?.id })
      .update({ root: null, sha256: 'f'.repeat(64) });
    await repos.contentBlocks.save(content?.id as string, {
      blockSize: ONE_BLOCK_MAX,
      hashes: createHash('sha256').update(data).digest(),
    });
    const again = await t.app.inject({
      method: 'PUT',
      url: '/dav/older-again.bin',
      headers: basic,
      payload: data,
    });
    expect(again.statusCode, again.body).toBe(201);
    expect((await repos.contents.findBySha1(file.sha1))?.root).toBe(root);

    // The same SHA-1 and size but another root: never merged.
    await db('contents')
      .where({ id: content?.id })
      .update({ root: '0'.repeat(64) });
    const clash = await t.app.inject({ method: 'PUT', url: '/dav/clash.bin', headers: basic, payload: data });
    expect(clash.statusCode).toBe(409);
    expect(errorCode(clash)).toBe('content_collision');
    await db('contents').where({ id: content?.id }).update({ root });
  });

  it('a chunk PUT without a checksum is refused before anything is hashed or stored', async () => {
    const data = random(CHUNK);
    const up = uploader(t, alice.headers);
    const { uploadId } = (await up.create({ name: 'none.bin', size: data.length, sha1: sha1(data) })).json();
    hashed.bytes.clear();
    hashed.bytes.clear();
    const res = await t.app.inject({
      method: 'PUT',
      url: `/api/uploads/${uploadId}/chunks/0`,
      headers: { ...alice.headers, 'content-type': 'application/octet-stream' },
      payload: data,
    });
    expect(errorCode(res)).toBe('checksum_required');
    expectNoPass('sha256');
    expect((await up.get(uploadId)).json().receivedChunks).toEqual([]);
  });
});
