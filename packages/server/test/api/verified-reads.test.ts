import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, truncate } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scrub } from '../../src/jobs/scrub.ts';
import { ONE_BLOCK_MAX } from '../../src/services/hashing/blocks.ts';
import { objectKey } from '../../src/storage/types.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { blockTableOf, random } from '../support/bytes.ts';
import { postForm, uploader } from '../support/uploads.ts';

const MiB = 1024 * 1024;
/** Four blocks, the last one short. */
const SIZE = 3 * MiB + 12_345;

/** Flips one byte in place, size unchanged: quiet bit rot. */
async function flip(file: string, at: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await fh.read(byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ 0xff;
    await fh.write(byte, 0, 1, at);
  } finally {
    await fh.close();
  }
}

/** The block table the server should hold, computed independently. */
const expectedHashes = (data: Buffer, blockSize = MiB): Buffer => blockTableOf(data, blockSize);

interface RawResponse {
  status: number;
  body: Buffer;
  /** The whole announced body arrived (false: the server cut the response, or we did). */
  complete: boolean;
}

/** A real HTTP GET, so a response the server cuts shows as cut, with the bytes that came before. */
function fetchRaw(url: string, headers: Record<string, string>, cutAfter?: number): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let responded = false;
    const req = http.get(url, { headers }, (res) => {
      responded = true;
      const parts: Buffer[] = [];
      let got = 0;
      let settled = false;
      const finish = (complete: boolean) => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), complete });
      };
      res.on('data', (chunk: Buffer) => {
        parts.push(chunk);
        got += chunk.length;
        if (cutAfter !== undefined && got >= cutAfter) {
          finish(false);
          req.destroy();
        }
      });
      res.on('end', () => finish(res.complete));
      res.on('error', () => undefined);
      res.on('close', () => finish(res.complete));
    });
    req.on('error', (error) => {
      if (!responded) reject(error);
    });
  });
}

describe('verified reads: two copies', () => {
  let t: TestApp;
  let dir: string;
  let baseUrl: string;
  let alice: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-verified-'));
    t = await startTestApp({
      DFS_NODES: `local://${path.join(dir, 'a')},local://${path.join(dir, 'b')}`,
      DFS_REPLICAS: '2',
      // Chunks of several blocks; a file sent in one request is held whole up to a chunk.
      DFS_CHUNK_SIZE: String(4 * MiB),
      DFS_SCRUB_PERIOD_DAYS: '0',
    });
    baseUrl = await t.app.listen({ port: 0, host: '127.0.0.1' });
    alice = await t.user('alice');
  });
  afterAll(async () => {
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A file of SIZE random bytes, sent in chunks or in one request. */
  async function upload(name: string, how: 'chunks' | 'one request' = 'chunks') {
    const data = random(SIZE);
    const file =
      how === 'chunks' ? await uploader(t, alice.headers).upload(data, name) : await sendWhole(name, data);
    const { repos, cluster } = t.app.services;
    const content = (await repos.contents.findBySha1(file.sha1))!;
    const rows = await repos.contents.replicasOf(content.id);
    expect(rows).toHaveLength(2);
    const nodes = await repos.nodes.list();
    const [first, second] = cluster.readOrder(
      file.sha1,
      rows.map((r) => r.node_id),
    );
    const pathOn = (nodeId: string | undefined) => {
      const root = nodes.find((n) => n.id === nodeId)!.name.replace(/^local:/, '');
      return path.join(root, objectKey(file.sha1));
    };
    const state = async (nodeId: string | undefined) =>
      (await repos.contents.replicasOf(content.id)).find((r) => r.node_id === nodeId)?.state;
    return { data, file, content, first: first!, second: second!, pathOn, state };
  }

  async function sendWhole(name: string, data: Buffer): Promise<{ id: string; sha1: string }> {
    const res = await postForm(t, alice.headers, name, data);
    expect(res.statusCode).toBe(201);
    return res.json().file;
  }

  const get = (id: string, range?: string) =>
    t.app.inject({
      url: `/api/files/${id}/content`,
      headers: { ...alice.headers, ...(range ? { range } : {}) },
    });

  it('records one SHA-256 per 1 MiB block when the content is stored', async () => {
    const { data, content } = await upload('table.bin');
    const table = await t.app.services.repos.contentBlocks.find(content.id);
    expect(table?.blockSize).toBe(MiB);
    expect(table?.hashes.equals(expectedHashes(data))).toBe(true);
  });

  it('serves bytes=0- of a rotten copy from the other copy and marks the rotten one corrupt', async () => {
    const { data, file, first, second, pathOn, state } = await upload('open-ended.bin');
    await flip(pathOn(first), 2 * MiB + 777);

    const res = await get(file.id, 'bytes=0-');
    expect(res.statusCode).toBe(206);
    expect(res.rawPayload.equals(data)).toBe(true);
    expect(await state(first)).toBe('corrupt');
    expect(await state(second)).toBe('ok');
  });

  it('gives a file sent in one request the 1 MiB table a chunked upload gets; an older one-block table still verifies', async () => {
    const { data, file, content, first, second, pathOn, state } = await upload('whole.bin', 'one request');
    const table = await t.app.services.repos.contentBlocks.find(content.id);
    expect(table).toEqual({ blockSize: MiB, hashes: blockTableOf(data, MiB) });
    // As stored before the hash budget: one block, the whole-file SHA-256. A rotten byte anywhere
    // then fails any range of that copy.
    await t.app.services.repos.contentBlocks.save(content.id, {
      blockSize: ONE_BLOCK_MAX,
      hashes: createHash('sha256').update(data).digest(),
    });
    await flip(pathOn(first), SIZE - 10);

    const res = await get(file.id, 'bytes=0-99');
    expect(res.statusCode).toBe(206);
    expect(res.rawPayload.equals(data.subarray(0, 100))).toBe(true);
    expect(await state(first)).toBe('corrupt');
    expect(await state(second)).toBe('ok');
  });

  it('serves a mid-file range of a rotten or truncated copy from the other copy', async () => {
    const rotten = await upload('mid-rotten.bin');
    await flip(rotten.pathOn(rotten.first), MiB + 5);
    const a = await get(rotten.file.id, `bytes=${MiB}-${MiB + 100}`);
    expect(a.statusCode).toBe(206);
    expect(a.rawPayload.equals(rotten.data.subarray(MiB, MiB + 101))).toBe(true);
    expect(await rotten.state(rotten.first)).toBe('corrupt');

    const short = await upload('mid-truncated.bin');
    await truncate(short.pathOn(short.first), 2 * MiB + 10);
    const b = await get(short.file.id, `bytes=1500000-${3 * MiB}`);
    expect(b.statusCode).toBe(206);
    expect(b.rawPayload.equals(short.data.subarray(1_500_000, 3 * MiB + 1))).toBe(true);
    expect(await short.state(short.first)).toBe('corrupt');
  });

  it('takes each block from a copy that has it when both copies are damaged in different blocks', async () => {
    const { data, file, first, second, pathOn, state } = await upload('both-rotten.bin');
    await flip(pathOn(first), MiB + 5);
    await flip(pathOn(second), 2 * MiB + 5);
    const ranges: Array<[number, number]> = [
      [0, SIZE - 1],
      [0, 99],
      [MiB, MiB + 99],
      [2 * MiB, 2 * MiB + 99],
      [MiB - 10, 2 * MiB + 10],
      [MiB + 5, MiB + 5],
      [2 * MiB + 5, 2 * MiB + 5],
      [500_000, 3 * MiB],
      [3 * MiB, SIZE - 1],
      [2 * MiB - 1, 2 * MiB],
      [0, 2 * MiB + 5],
      [MiB + 5, SIZE - 1],
      [1, SIZE - 2],
      [2 * MiB + 6, SIZE - 1],
      [MiB, 3 * MiB - 1],
    ];
    const answers: number[] = [];
    for (const [start, end] of ranges) {
      const res = await get(file.id, `bytes=${start}-${end}`);
      answers.push(res.statusCode);
      expect(res.rawPayload.equals(data.subarray(start, end + 1)), `${start}-${end}`).toBe(true);
    }
    expect(answers).toEqual(Array(ranges.length).fill(206));
    // Both copies are known damaged now (repair's work); reads still find every block.
    expect(await state(first)).toBe('corrupt');
    expect(await state(second)).toBe('corrupt');
    const whole = await get(file.id);
    expect(whole.statusCode).toBe(200);
    expect(whole.rawPayload.equals(data)).toBe(true);
  });

  it('a download cut by the client and resumed with Range yields exactly the original bytes', async () => {
    const { data, file, first, pathOn, state } = await upload('resume.bin');
    await flip(pathOn(first), MiB + 10);
    const url = `${baseUrl}/api/files/${file.id}/content`;

    const cut = await fetchRaw(url, alice.headers, 2 * MiB);
    expect(cut.status).toBe(200);
    expect(cut.complete).toBe(false);
    expect(cut.body.length).toBeGreaterThanOrEqual(2 * MiB);
    const rest = await fetchRaw(url, { ...alice.headers, range: `bytes=${cut.body.length}-` });
    expect(rest.status).toBe(206);
    expect(rest.complete).toBe(true);
    expect(Buffer.concat([cut.body, rest.body]).equals(data)).toBe(true);
    expect(await state(first)).toBe('corrupt');
  });

  it('content stored before block tables gets one from a verified copy before a range is served', async () => {
    const { data, file, content, first, pathOn, state } = await upload('legacy.bin');
    // What a content row from before the 002_content_blocks migration looks like: no table.
    await t.app.services.db('content_blocks').where({ content_id: content.id }).delete();
    await flip(pathOn(first), 3 * MiB + 1);

    const res = await get(file.id, `bytes=${3 * MiB}-${3 * MiB + 99}`);
    expect(res.statusCode).toBe(206);
    expect(res.rawPayload.equals(data.subarray(3 * MiB, 3 * MiB + 100))).toBe(true);
    expect(await state(first)).toBe('corrupt');
    const table = await t.app.services.repos.contentBlocks.find(content.id);
    expect(table?.hashes.equals(expectedHashes(data))).toBe(true);
  });

  it('the scrub fills in the block table of content stored before block tables', async () => {
    const { data, content } = await upload('legacy-scrub.bin');
    await t.app.services.db('content_blocks').where({ content_id: content.id }).delete();
    expect(await t.app.services.repos.contentBlocks.find(content.id)).toBeUndefined();
    await scrub(t.app.services.clusterJobs.deps, { bytesPerSecond: 1024 * MiB });
    const table = await t.app.services.repos.contentBlocks.find(content.id);
    expect(table?.blockSize).toBe(MiB);
    expect(table?.hashes.equals(expectedHashes(data))).toBe(true);
  });

  it('stores the block table of a 64 GiB file (65536 digests) intact', async () => {
    const { content } = await upload('big-table.bin');
    const hashes = randomBytes(65_536 * 32);
    await t.app.services.repos.contentBlocks.save(content.id, { blockSize: MiB, hashes });
    const back = await t.app.services.repos.contentBlocks.find(content.id);
    expect(back?.hashes.length).toBe(hashes.length);
    expect(back?.hashes.equals(hashes)).toBe(true);
  });
});

describe('verified reads: one rotten copy and nothing else', () => {
  let t: TestApp;
  let baseUrl: string;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  const DAMAGE = 2 * MiB + 500;

  beforeAll(async () => {
    t = await startTestApp({ DFS_REPLICAS: '1', DFS_CHUNK_SIZE: String(MiB) });
    baseUrl = await t.app.listen({ port: 0, host: '127.0.0.1' });
    alice = await t.user('alice');
  });
  afterAll(() => t?.close());

  async function rotten(name: string) {
    const data = random(SIZE);
    const file = await uploader(t, alice.headers).upload(data, name);
    await flip(path.join(t.dataDir, 'nodes', 'local', objectKey(file.sha1)), DAMAGE);
    const content = (await t.app.services.repos.contents.findBySha1(file.sha1))!;
    const state = async () => (await t.app.services.repos.contents.replicasOf(content.id))[0]?.state;
    return { data, file, content, state, url: `${baseUrl}/api/files/${file.id}/content` };
  }

  /** What a client got is what the file holds there, and nothing of the damaged block. */
  function expectCleanPrefix(res: RawResponse, data: Buffer, from: number): void {
    expect(res.complete).toBe(false);
    expect(res.body.length).toBeLessThanOrEqual(Math.max(0, 2 * MiB - from));
    expect(res.body.equals(data.subarray(from, from + res.body.length))).toBe(true);
  }

  it('cuts a ranged GET (bytes=0-) before the damaged block and marks the copy corrupt', async () => {
    const { data, url, state } = await rotten('open-ended.bin');
    const res = await fetchRaw(url, { ...alice.headers, range: 'bytes=0-' });
    expect(res.status).toBe(206);
    expectCleanPrefix(res, data, 0);
    // The blocks before the damage were verified and sent.
    expect(res.body.length).toBe(2 * MiB);
    expect(await state()).toBe('corrupt');
    // A copy known damaged still serves its blocks that verify; the damaged one has no good copy
    // left, so a range starting there fails up front instead of sending anything.
    const before = await fetchRaw(url, { ...alice.headers, range: 'bytes=0-99' });
    expect(before.status).toBe(206);
    expect(before.body.equals(data.subarray(0, 100))).toBe(true);
    expect(
      (await fetchRaw(url, { ...alice.headers, range: `bytes=${2 * MiB}-${2 * MiB + 99}` })).status,
    ).toBe(503);
  });

  it('sends nothing of a range that lies in the damaged block', async () => {
    const { data, url, state } = await rotten('mid.bin');
    const from = 2 * MiB + 100;
    const res = await fetchRaw(url, { ...alice.headers, range: `bytes=${from}-${from + 1000}` });
    // The range starts in the damaged block, so the failure comes before any header.
    expect(res.status).toBe(503);
    expect(res.body.includes(data.subarray(from, from + 1001))).toBe(false);
    expect(await state()).toBe('corrupt');
  });

  it('cuts a full GET before the damaged block: a resume can only continue correct bytes', async () => {
    const { data, url, state } = await rotten('full.bin');
    const res = await fetchRaw(url, alice.headers);
    expect(res.status).toBe(200);
    expectCleanPrefix(res, data, 0);
    expect(await state()).toBe('corrupt');
  });

  it('serves no range of content without a block table unless a whole copy verified', async () => {
    const { content, url, state } = await rotten('legacy.bin');
    await t.app.services.db('content_blocks').where({ content_id: content.id }).delete();
    // Block 0 is intact, but nothing proves it: the table comes only from a copy whose SHA-1 holds.
    const res = await fetchRaw(url, { ...alice.headers, range: 'bytes=0-99' });
    expect(res.status).toBe(503);
    expect(await state()).toBe('corrupt');
    expect(await t.app.services.repos.contentBlocks.find(content.id)).toBeUndefined();
  });
});
