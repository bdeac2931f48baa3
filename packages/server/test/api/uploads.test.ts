import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { blockTableOf, chunksOf, crc32cDigest, md5Base64, proofFor, random, sha1 } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

describe('chunked upload', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let bob: Awaited<ReturnType<TestApp['user']>>;
  let up: ReturnType<typeof uploader>;
  let bobUp: ReturnType<typeof uploader>;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK), DFS_MAX_FILE_SIZE: String(CHUNK * 40) });
    alice = await t.user('alice');
    bob = await t.user('bob');
    up = uploader(t, alice.headers);
    bobUp = uploader(t, bob.headers);
  });
  afterAll(() => t.close());

  it('creates a session, takes chunks in any order and in parallel, and completes', async () => {
    const data = random(CHUNK * 3 + 1234);
    const created = await up.create({ name: 'report.pdf', size: data.length, sha1: sha1(data) });
    expect(created.statusCode).toBe(201);
    const session = created.json();
    expect(session).toMatchObject({ status: 'created', chunkSize: CHUNK, chunkCount: 4, receivedChunks: [] });
    expect(Date.parse(session.expiresAt)).toBeGreaterThan(Date.now());

    const chunks = chunksOf(data, CHUNK);
    const results = await Promise.all(chunks.map((c, i) => up.put(session.uploadId, i, c)).reverse());
    expect(results.map((r) => r.statusCode)).toEqual([204, 204, 204, 204]);
    // Re-sending a stored chunk is harmless.
    expect((await up.put(session.uploadId, 1, chunks[1] as Buffer)).statusCode).toBe(204);

    const state = (await up.get(session.uploadId)).json();
    expect(state.receivedChunks).toEqual([0, 1, 2, 3]);
    expect(state).toMatchObject({ name: 'report.pdf', size: data.length, sha1: sha1(data) });

    const done = await up.complete(session.uploadId);
    expect(done.statusCode).toBe(201);
    const file = done.json().file;
    expect(file).toMatchObject({
      kind: 'file',
      name: 'report.pdf',
      size: data.length,
      sha1: sha1(data),
      parentId: null,
    });
    expect(file.mime).toBe('application/pdf');

    // complete twice returns the same file; concurrent completes agree too.
    const again = await up.complete(session.uploadId);
    expect(again.statusCode).toBe(201);
    expect(again.json().file.id).toBe(file.id);
    // The part file became the object: nothing is left under .parts, nothing went to app disk.
    expect(existsSync(path.join(t.dataDir, 'nodes', 'local', '.parts', session.uploadId))).toBe(false);
    expect(existsSync(path.join(t.dataDir, 'nodes', 'local', 'objects', sha1(data).slice(0, 2)))).toBe(true);
  });

  it('concurrent completes: one does the work, the others get 409 upload_busy with Retry-After', async () => {
    const data = random(CHUNK + 5);
    const { uploadId } = (await up.create({ name: 'twice.bin', size: data.length, sha1: sha1(data) })).json();
    for (const [i, c] of chunksOf(data, CHUNK).entries()) await up.put(uploadId, i, c);
    const results = await Promise.all([up.complete(uploadId), up.complete(uploadId), up.complete(uploadId)]);
    const done = results.filter((r) => r.statusCode === 201);
    const busy = results.filter((r) => r.statusCode === 409);
    // One did the work; the others were told upload_busy, or (had it already finished when they
    // looked) answered the same file.
    expect(done.length).toBeGreaterThanOrEqual(1);
    expect(new Set(done.map((r) => r.json().file.id)).size).toBe(1);
    expect(busy.length + done.length).toBe(3);
    for (const r of busy) {
      expect(r.json().error.code).toBe('upload_busy');
      expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    }
    // Asking again once it is done answers the same file; no second file was made.
    const again = await up.complete(uploadId);
    expect(again.statusCode).toBe(201);
    expect(again.json().file.id).toBe(done[0]?.json().file.id);
    const listing = await t.app.inject({ method: 'GET', url: '/api/files', headers: alice.headers });
    expect(listing.json().items.filter((f: { name: string }) => f.name === 'twice.bin')).toHaveLength(1);
  });

  it('a complete held by another instance (a live lease) answers upload_busy; an expired one is retaken', async () => {
    const data = random(CHUNK + 5);
    const { uploadId } = (
      await up.create({ name: 'leased.bin', size: data.length, sha1: sha1(data) })
    ).json();
    for (const [i, c] of chunksOf(data, CHUNK).entries()) await up.put(uploadId, i, c);
    const db = t.app.services.db;
    await db('uploads')
      .where({ id: uploadId })
      .update({ status: 'completing', lease_until: Date.now() + 60_000 });
    const held = await up.complete(uploadId);
    expect(held.statusCode).toBe(409);
    expect(errorCode(held)).toBe('upload_busy');
    expect(Number(held.headers['retry-after'])).toBeGreaterThan(0);
    // The holder died: its lease runs out and the next caller does the work.
    await db('uploads')
      .where({ id: uploadId })
      .update({ lease_until: Date.now() - 1 });
    const retaken = await up.complete(uploadId);
    expect(retaken.statusCode).toBe(201);
    expect(retaken.json().file.sha1).toBe(sha1(data));
  });

  it('a chunk that arrives after its upload was aborted gets 404, not a 500', async () => {
    const data = random(CHUNK * 2);
    const { uploadId } = (
      await up.create({ name: 'raced-abort.bin', size: data.length, sha1: sha1(data) })
    ).json();
    // The PUT looked the upload up just before the abort deleted it.
    const row = await t.app.services.repos.uploads.find(alice.id, uploadId);
    expect((await up.abort(uploadId)).statusCode).toBe(204);
    const late = t.app.services.uploads.putChunk(
      row!,
      0,
      CHUNK,
      Readable.from([chunksOf(data, CHUNK)[0] as Buffer]),
    );
    await expect(late).rejects.toMatchObject({ code: 'not_found', status: 404 });
    expect(await t.app.services.db('upload_chunks').where({ upload_id: uploadId })).toHaveLength(0);
    expect(existsSync(path.join(t.dataDir, 'nodes', 'local', '.parts', uploadId))).toBe(false);
  });

  it('returns an unfinished upload of the same content as resumed', async () => {
    const data = random(CHUNK * 2 + 10);
    const first = (await up.create({ name: 'resume.bin', size: data.length, sha1: sha1(data) })).json();
    await up.put(first.uploadId, 1, chunksOf(data, CHUNK)[1] as Buffer);
    const again = await up.create({ name: 'resume.bin', size: data.length, sha1: sha1(data) });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ status: 'resumed', uploadId: first.uploadId, receivedChunks: [1] });
    // Another user never resumes someone else's upload.
    const other = await bobUp.create({ name: 'resume.bin', size: data.length, sha1: sha1(data) });
    expect(other.statusCode).toBe(201);
    expect(other.json().uploadId).not.toBe(first.uploadId);
  });

  describe('rejects bad chunks with clear errors and keeps nothing', () => {
    const data = random(CHUNK * 2 + 100);
    let uploadId: string;
    beforeAll(async () => {
      uploadId = (await up.create({ name: 'strict.bin', size: data.length, sha1: sha1(data) })).json()
        .uploadId;
    });

    it('wrong Content-MD5 → 400 checksum_mismatch', async () => {
      const chunk = chunksOf(data, CHUNK)[0] as Buffer;
      const res = await up.put(uploadId, 0, chunk, { 'content-md5': md5Base64(Buffer.from('other')) });
      expect(res.statusCode).toBe(400);
      expect(errorCode(res)).toBe('checksum_mismatch');
      expect((await up.get(uploadId)).json().receivedChunks).toEqual([]);
    });

    it('wrong CRC-32C in Content-Digest → 400 checksum_mismatch, nothing stored', async () => {
      const chunk = chunksOf(data, CHUNK)[0] as Buffer;
      const res = await up.put(uploadId, 0, chunk, { 'content-digest': crc32cDigest(Buffer.from('other')) });
      expect(res.statusCode).toBe(400);
      expect(errorCode(res)).toBe('checksum_mismatch');
      expect(res.json().error.message).toMatch(/Content-Digest/);
      expect((await up.get(uploadId)).json().receivedChunks).toEqual([]);
    });

    it('no checksum at all → 400 checksum_required, nothing stored', async () => {
      const chunk = chunksOf(data, CHUNK)[0] as Buffer;
      const res = await t.app.inject({
        method: 'PUT',
        url: `/api/uploads/${uploadId}/chunks/0`,
        headers: { ...alice.headers, 'content-type': 'application/octet-stream' },
        payload: chunk,
      });
      expect(res.statusCode).toBe(400);
      expect(errorCode(res)).toBe('checksum_required');
      // A Content-Digest of other algorithms only is no checksum of ours either.
      const other = await up.put(uploadId, 0, chunk, { 'content-digest': 'sha-512=:AAAA:' });
      expect(errorCode(other)).toBe('checksum_required');
      expect((await up.get(uploadId)).json().receivedChunks).toEqual([]);
    });

    it('malformed Content-Digest → 400 bad_request; a right CRC among other members is taken', async () => {
      const chunk = chunksOf(data, CHUNK)[0] as Buffer;
      for (const bad of ['crc32c=AAAA', 'crc32c=:AAAAAAA=:', 'crc32c=:%%%:']) {
        const res = await up.put(uploadId, 0, chunk, { 'content-digest': bad });
        expect(res.statusCode, bad).toBe(400);
        expect(errorCode(res)).toBe('bad_request');
      }
      expect((await up.get(uploadId)).json().receivedChunks).toEqual([]);
      const other = random(CHUNK + 1);
      const { uploadId: id } = (
        await up.create({ name: 'mixed.bin', size: other.length, sha1: sha1(other) })
      ).json();
      const first = other.subarray(0, CHUNK);
      const mixed = `sha-256=:${createHash('sha256').update(first).digest('base64')}:, ${crc32cDigest(first)}`;
      expect((await up.put(id, 0, first, { 'content-digest': mixed })).statusCode).toBe(204);
      expect((await up.get(id)).json().receivedChunks).toEqual([0]);
      await up.abort(id);
    });

    it('malformed Content-MD5 → 400 bad_request', async () => {
      const res = await up.put(uploadId, 0, chunksOf(data, CHUNK)[0] as Buffer, { 'content-md5': 'abc' });
      expect(res.statusCode).toBe(400);
      expect(errorCode(res)).toBe('bad_request');
    });

    it('index past the end → 400 bad_chunk_index; a negative one → 400', async () => {
      const res = await up.put(uploadId, 3, Buffer.alloc(10));
      expect(res.statusCode).toBe(400);
      expect(errorCode(res)).toBe('bad_chunk_index');
      const negative = await up.put(uploadId, -1, Buffer.alloc(10));
      expect(negative.statusCode).toBe(400);
    });

    it('a chunk of the wrong size → 400 bad_chunk_size (short, long, and the last chunk)', async () => {
      for (const [index, size] of [
        [0, CHUNK - 1],
        [0, CHUNK + 1],
        [2, 99],
      ] as const) {
        const res = await up.put(uploadId, index, random(size));
        expect(res.statusCode).toBe(400);
        expect(errorCode(res)).toBe('bad_chunk_size');
      }
      expect((await up.get(uploadId)).json().receivedChunks).toEqual([]);
    });

    it('compressed bodies → 415', async () => {
      const res = await up.put(uploadId, 0, chunksOf(data, CHUNK)[0] as Buffer, {
        'content-encoding': 'gzip',
      });
      expect(res.statusCode).toBe(415);
      expect(errorCode(res)).toBe('unsupported_media_type');
    });

    it('complete with chunks missing → 409 incomplete with the missing indexes', async () => {
      await up.put(uploadId, 1, chunksOf(data, CHUNK)[1] as Buffer);
      const res = await up.complete(uploadId);
      expect(res.statusCode).toBe(409);
      expect(res.json().error).toMatchObject({ code: 'incomplete', missing: [0, 2] });
    });

    it("another user's upload id is 404 for every verb", async () => {
      expect((await bobUp.get(uploadId)).statusCode).toBe(404);
      expect((await bobUp.put(uploadId, 0, chunksOf(data, CHUNK)[0] as Buffer)).statusCode).toBe(404);
      expect((await bobUp.complete(uploadId)).statusCode).toBe(404);
      expect((await bobUp.abort(uploadId)).statusCode).toBe(404);
      expect((await up.get(uploadId)).statusCode).toBe(200);
    });
  });

  it('discards a liar: declared sha1 ≠ content registers nothing', async () => {
    const data = random(CHUNK + 7);
    const claimed = sha1(random(16));
    const { uploadId } = (await up.create({ name: 'liar.bin', size: data.length, sha1: claimed })).json();
    for (const [i, c] of chunksOf(data, CHUNK).entries()) await up.put(uploadId, i, c);
    const res = await up.complete(uploadId);
    expect(res.statusCode).toBe(422);
    expect(errorCode(res)).toBe('hash_mismatch');
    expect((await up.get(uploadId)).statusCode).toBe(404);
    const content = await t.app.services.repos.contents.findBySha1(claimed);
    expect(content).toBeUndefined();
    expect(await t.app.services.repos.contents.findBySha1(sha1(data))).toBeUndefined();
    const listed = await t.app.inject({ url: '/api/files?q=liar', headers: alice.headers });
    expect(listed.json().total).toBe(0);
    expect(existsSync(path.join(t.dataDir, 'staging', uploadId))).toBe(false);
  });

  it('refuses an oversize file and an invalid name up front', async () => {
    const big = await up.create({ name: 'huge.iso', size: CHUNK * 41, sha1: sha1('x') });
    expect(big.statusCode).toBe(413);
    expect(errorCode(big)).toBe('file_too_large');
    for (const name of ['..', '.', 'a/b', 'nul\0byte', 'x'.repeat(256), 'é'.repeat(128)]) {
      const res = await up.create({ name, size: 1, sha1: sha1('y') });
      expect(res.statusCode, name).toBe(400);
    }
  });

  it('aborts: 204, the session is gone and its bytes freed', async () => {
    const data = random(CHUNK + 1);
    const { uploadId } = (await up.create({ name: 'abort.bin', size: data.length, sha1: sha1(data) })).json();
    await up.put(uploadId, 0, chunksOf(data, CHUNK)[0] as Buffer);
    // The chunk went straight to the node's part file, not to the app's disk.
    const part = path.join(t.dataDir, 'nodes', 'local', '.parts', uploadId);
    expect(existsSync(part)).toBe(true);
    expect(existsSync(path.join(t.dataDir, 'staging'))).toBe(false);
    expect((await up.abort(uploadId)).statusCode).toBe(204);
    expect((await up.get(uploadId)).statusCode).toBe(404);
    expect(existsSync(part)).toBe(false);
  });

  describe('speculative upload (created without sha1)', () => {
    const completeWith = (uploadId: string, body: object) =>
      t.app.inject({
        method: 'POST',
        url: `/api/uploads/${uploadId}/complete`,
        headers: alice.headers,
        payload: body,
      });

    it('takes chunks before the hash is known and verifies the sha1 given at complete', async () => {
      const data = random(CHUNK * 2 + 99);
      const created = await up.create({ name: 'spec.bin', size: data.length });
      expect(created.statusCode).toBe(201);
      const { uploadId, chunkCount } = created.json();
      expect(chunkCount).toBe(3);
      for (const [i, c] of chunksOf(data, CHUNK).entries())
        expect((await up.put(uploadId, i, c)).statusCode).toBe(204);
      const without = await up.complete(uploadId);
      expect(without.statusCode).toBe(422);
      expect(errorCode(without)).toBe('sha1_required');
      // Asking without the hash changes nothing: the upload is still there to finish.
      expect((await up.get(uploadId)).json().receivedChunks).toEqual([0, 1, 2]);
      const done = await completeWith(uploadId, { sha1: sha1(data) });
      expect(done.statusCode).toBe(201);
      expect(done.json().file).toMatchObject({ name: 'spec.bin', sha1: sha1(data), size: data.length });
    });

    it('a wrong sha1 at complete registers nothing and frees the parts', async () => {
      const data = random(CHUNK + 3);
      const { uploadId } = (await up.create({ name: 'spec-lie.bin', size: data.length })).json();
      for (const [i, c] of chunksOf(data, CHUNK).entries()) await up.put(uploadId, i, c);
      const claimed = sha1(random(20));
      const res = await completeWith(uploadId, { sha1: claimed });
      expect(res.statusCode).toBe(422);
      expect(errorCode(res)).toBe('hash_mismatch');
      expect((await up.get(uploadId)).statusCode).toBe(404);
      expect(await t.app.services.repos.contents.findBySha1(claimed)).toBeUndefined();
      expect(await t.app.services.repos.contents.findBySha1(sha1(data))).toBeUndefined();
      expect(existsSync(path.join(t.dataDir, 'nodes', 'local', '.parts', uploadId))).toBe(false);
    });

    it('a sha1 at complete that contradicts the one given at create is a mismatch', async () => {
      const data = random(CHUNK + 3);
      const { uploadId } = (
        await up.create({ name: 'both.bin', size: data.length, sha1: sha1(data) })
      ).json();
      for (const [i, c] of chunksOf(data, CHUNK).entries()) await up.put(uploadId, i, c);
      const res = await completeWith(uploadId, { sha1: sha1(random(5)) });
      expect(res.statusCode).toBe(422);
      expect(errorCode(res)).toBe('hash_mismatch');
      const bad = await completeWith(uploadId, { sha1: 'xyz' });
      expect(bad.statusCode).toBe(400);
    });

    it('a chunk re-sent with other bytes is chunk_conflict, and the stored one stays', async () => {
      const data = random(CHUNK * 2);
      const { uploadId } = (await up.create({ name: 'changed.bin', size: data.length })).json();
      const [first, second] = chunksOf(data, CHUNK) as [Buffer, Buffer];
      expect((await up.put(uploadId, 0, first)).statusCode).toBe(204);
      const conflict = await up.put(uploadId, 0, random(CHUNK));
      expect(conflict.statusCode).toBe(409);
      expect(errorCode(conflict)).toBe('chunk_conflict');
      expect((await up.put(uploadId, 1, second)).statusCode).toBe(204);
      expect((await completeWith(uploadId, { sha1: sha1(data) })).statusCode).toBe(201);
    });
  });

  describe('instant upload', () => {
    const data = random(CHUNK * 2 + 333);
    beforeAll(async () => {
      await up.upload(data, 'original.bin');
    });

    it('challenges a known hash and accepts only a correct, fresh proof', async () => {
      const ask = () => bobUp.create({ name: 'mine.bin', size: data.length, sha1: sha1(data) });
      const first = await ask();
      expect(first.statusCode).toBe(200);
      const { challenge } = first.json();
      expect(first.json().status).toBe('challenge');
      expect(challenge.offset + challenge.length).toBeLessThanOrEqual(data.length);
      expect(challenge.length).toBeGreaterThan(0);

      // Knowing only the hash: a guessed proof fails and burns the challenge.
      const guess = await bobUp.create({
        name: 'mine.bin',
        size: data.length,
        sha1: sha1(data),
        proof: { challengeId: challenge.id, sha1: sha1(challenge.nonce) },
      });
      expect(guess.statusCode).toBe(403);
      expect(errorCode(guess)).toBe('proof_failed');
      const replay = await bobUp.create({
        name: 'mine.bin',
        size: data.length,
        sha1: sha1(data),
        proof: { challengeId: challenge.id, sha1: proofFor(data, challenge) },
      });
      expect(replay.statusCode).toBe(403);

      const second = (await ask()).json().challenge;
      const ok = await bobUp.create({
        name: 'mine.bin',
        size: data.length,
        sha1: sha1(data),
        proof: { challengeId: second.id, sha1: proofFor(data, second) },
      });
      expect(ok.statusCode).toBe(201);
      expect(ok.json()).toMatchObject({ status: 'instant', file: { name: 'mine.bin', sha1: sha1(data) } });
      // One shared content row, two per-user names.
      const aliceList = await t.app.inject({ url: '/api/files?q=original', headers: alice.headers });
      expect(aliceList.json().items[0].name).toBe('original.bin');
      // A used challenge cannot be replayed, even with the right answer.
      const again = await bobUp.create({
        name: 'mine2.bin',
        size: data.length,
        sha1: sha1(data),
        proof: { challengeId: second.id, sha1: proofFor(data, second) },
      });
      expect(again.statusCode).toBe(403);
    });

    it("picks a random range per challenge, and another user's challenge id is useless", async () => {
      const offsets = new Set<number>();
      let aliceChallenge: { id: string; nonce: string; offset: number; length: number } | undefined;
      for (let i = 0; i < 6; i++) {
        aliceChallenge = (await up.create({ name: 'x.bin', size: data.length, sha1: sha1(data) })).json()
          .challenge;
        offsets.add(aliceChallenge?.offset ?? -1);
      }
      expect(offsets.size).toBeGreaterThan(1);
      const stolen = await bobUp.create({
        name: 'x.bin',
        size: data.length,
        sha1: sha1(data),
        proof: { challengeId: aliceChallenge?.id, sha1: proofFor(data, aliceChallenge as never) },
      });
      expect(stolen.statusCode).toBe(403);
    });

    it('the same sha1 with another size is not a hit', async () => {
      const res = await bobUp.create({ name: 'y.bin', size: data.length + 1, sha1: sha1(data) });
      expect(res.json().status).toBe('created');
    });
  });

  it('users completing the same new content at once make one content row', async () => {
    const data = random(CHUNK * 2 + 1);
    const others = await Promise.all(['carol', 'dave', 'erin'].map((name) => t.user(name)));
    const uploaders = [up, bobUp, ...others.map((u) => uploader(t, u.headers))];
    const files = await Promise.all(uploaders.map((u, i) => u.upload(data, `race-${i}.bin`)));
    expect(new Set(files.map((f) => f.sha1))).toEqual(new Set([sha1(data)]));
    expect(files.map((f) => f.name)).toEqual(uploaders.map((_, i) => `race-${i}.bin`));
    const rows = await t.app.services.db('contents').where({ sha1: sha1(data) });
    expect(rows).toHaveLength(1);
    expect(rows[0].unreferenced_since).toBeNull();
  });

  it('names a second upload of the same name in a folder with a suffix', async () => {
    const one = await up.upload(random(100), 'dup.txt');
    const two = await up.upload(random(100), 'dup.txt');
    expect(one.name).toBe('dup.txt');
    expect(two.name).toBe('dup (1).txt');
  });

  it('uploads an empty file', async () => {
    const file = await up.upload(Buffer.alloc(0), 'empty.txt');
    expect(file).toMatchObject({ size: 0, sha1: sha1('') });
  });

  it('needs a session', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/uploads', payload: {} });
    expect(res.statusCode).toBe(401);
  });
});

describe('chunks of several 1 MiB blocks', () => {
  // Each chunk's block digests are its identity and its share of the content's block table.
  const CHUNK_3M = 3 * 1024 * 1024;
  const blockTable = async (t: TestApp, hash: string) => {
    const { repos } = t.app.services;
    const content = (await repos.contents.findBySha1(hash))!;
    return (await repos.contentBlocks.find(content.id))?.hashes.toString('hex');
  };

  it('builds the block table from the chunks, in any order, with a short block at each chunk end', async () => {
    // A chunk size that is no whole number of blocks: every chunk ends in a short block.
    for (const chunkSize of [CHUNK_3M, CHUNK_3M + 12_345]) {
      const t = await startTestApp({ DFS_CHUNK_SIZE: String(chunkSize) });
      try {
        const user = await t.user('blocks');
        const api = uploader(t, user.headers);
        const data = random(chunkSize * 2 + 1_500_000);
        const { uploadId } = (
          await api.create({ name: 'b.bin', size: data.length, sha1: sha1(data) })
        ).json();
        const chunks = chunksOf(data, chunkSize);
        for (const i of [2, 0, 1])
          expect((await api.put(uploadId, i, chunks[i] as Buffer)).statusCode).toBe(204);
        expect((await api.complete(uploadId)).statusCode).toBe(201);
        expect(await blockTable(t, sha1(data))).toBe(blockTableOf(data, 1024 * 1024).toString('hex'));
      } finally {
        await t.close();
      }
    }
  });

  it("moves an upload's expiry with its chunks, at most once a minute", async () => {
    let clock = Date.parse('2026-12-07T12:00:00Z');
    const app = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) }, { now: () => clock });
    try {
      const user = await app.user('ticker');
      const api = uploader(app, user.headers);
      const data = random(CHUNK * 3);
      const chunks = chunksOf(data, CHUNK);
      const { uploadId, expiresAt } = (
        await api.create({ name: 't.bin', size: data.length, sha1: sha1(data) })
      ).json();
      const expiry = async () => Date.parse((await api.get(uploadId)).json().expiresAt);
      clock += 30_000;
      expect((await api.put(uploadId, 0, chunks[0] as Buffer)).statusCode).toBe(204);
      expect(await expiry()).toBe(Date.parse(expiresAt));
      clock += 40_000;
      expect((await api.put(uploadId, 1, chunks[1] as Buffer)).statusCode).toBe(204);
      expect(await expiry()).toBe(clock + 24 * 3600_000);
    } finally {
      await app.close();
    }
  });

  it('knows a chunk acknowledged under the older identity (a plain SHA-256) and reads it back', async () => {
    const first = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK_3M) });
    const user = await first.user('legacy');
    const data = random(CHUNK_3M * 2);
    const api = uploader(first, user.headers);
    const { uploadId } = (await api.create({ name: 'l.bin', size: data.length, sha1: sha1(data) })).json();
    const chunks = chunksOf(data, CHUNK_3M) as [Buffer, Buffer];
    expect((await api.put(uploadId, 0, chunks[0])).statusCode).toBe(204);
    const rows = () => first.app.services.db('upload_chunks').where({ upload_id: uploadId, idx: 0 });
    const plain = createHash('sha256').update(chunks[0]).digest('hex');
    expect((await rows())[0].sha256).not.toBe(plain);
    await rows().update({ sha256: plain });
    // The same bytes again: no conflict; other bytes: still one.
    expect((await api.put(uploadId, 0, chunks[0])).statusCode).toBe(204);
    const other = await api.put(uploadId, 0, random(CHUNK_3M));
    expect(errorCode(other)).toBe('chunk_conflict');
    expect((await api.put(uploadId, 1, chunks[1])).statusCode).toBe(204);
    await first.app.close();

    // A new process has no running hash: complete reads both chunks back and checks them.
    const { buildApp } = await import('../../src/app.ts');
    const second = await buildApp(first.config, { logger: false });
    try {
      const again = uploader({ ...first, app: second }, user.headers);
      const done = await again.complete(uploadId);
      expect(done.statusCode).toBe(201);
      expect(done.json().file.sha1).toBe(sha1(data));
      expect(await blockTable({ ...first, app: second }, sha1(data))).toBe(
        blockTableOf(data, 1024 * 1024).toString('hex'),
      );
    } finally {
      await second.close();
      await first.close().catch(() => undefined);
    }
  });
});

describe('upload survives a server restart', () => {
  it('resumes with the chunks staged before the restart', async () => {
    const first = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) });
    const user = await first.user('restart');
    const data = random(CHUNK * 3);
    const api = uploader(first, user.headers);
    const { uploadId } = (await api.create({ name: 'r.bin', size: data.length, sha1: sha1(data) })).json();
    const chunks = chunksOf(data, CHUNK);
    await api.put(uploadId, 0, chunks[0] as Buffer);
    await api.put(uploadId, 2, chunks[2] as Buffer);
    await first.app.close();

    // A new process on the same data dir and database.
    const { buildApp } = await import('../../src/app.ts');
    const second = await buildApp(first.config, { logger: false });
    try {
      const again = uploader({ ...first, app: second }, user.headers);
      const resumed = await again.create({ name: 'r.bin', size: data.length, sha1: sha1(data) });
      expect(resumed.json()).toMatchObject({ status: 'resumed', uploadId, receivedChunks: [0, 2] });
      expect((await again.put(uploadId, 1, chunks[1] as Buffer)).statusCode).toBe(204);
      const done = await again.complete(uploadId);
      expect(done.statusCode).toBe(201);
      expect(done.json().file.sha1).toBe(sha1(data));
    } finally {
      await second.close();
      await first.close().catch(() => undefined);
    }
  });
});
