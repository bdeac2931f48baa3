import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repair } from '../../src/jobs/repair.ts';
import { chunksOf, random, sha1 } from '../support/bytes.ts';
import { startCluster, type TestCluster, waitFor } from './harness.ts';

const MiB = 1024 * 1024;

/**
 * Data path v2: chunks go to the upload's R nodes as they arrive. These kill real sshd nodes
 * under a running upload and check that nothing acknowledged is lost and nothing half-made is
 * registered.
 */
describe('nodes that die under an upload', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster(3, { DFS_CHUNK_SIZE: String(MiB) });
  });
  afterAll(() => c?.close());

  async function open(data: Buffer, name: string) {
    const created = await c.up.create({ name, size: data.length, sha1: sha1(data) });
    expect(created.statusCode).toBe(201);
    const { uploadId, chunkSize } = created.json();
    const nodeIds = (await c.t.app.services.repos.uploads.nodes(uploadId)).map((r) => r.node_id);
    return { uploadId, chunks: chunksOf(data, chunkSize), nodeIds };
  }

  async function listed(name: string): Promise<number> {
    const res = await c.t.app.inject({ url: `/api/files?q=${name}`, headers: c.admin.headers });
    return res.json().total;
  }

  async function allUp() {
    await waitFor('the nodes back up', async () => (await c.nodes()).every((n) => n.status === 'up'));
  }

  it('one of the upload nodes dies midway: the rest go to the survivor, repair restores R', async () => {
    const data = random(8 * MiB + 7);
    const hash = sha1(data);
    const { uploadId, chunks, nodeIds } = await open(data, 'one-dies.bin');
    expect(nodeIds).toHaveLength(2);
    for (const i of [0, 1, 2, 3])
      expect((await c.up.put(uploadId, i, chunks[i] as Buffer)).statusCode).toBe(204);
    const victim = await c.handleOf(nodeIds[0] as string);
    const survivor = await c.handleOf(nodeIds[1] as string);
    await victim.kill();
    for (let i = 4; i < chunks.length; i++) {
      expect((await c.up.put(uploadId, i, chunks[i] as Buffer)).statusCode).toBe(204);
    }
    const done = await c.up.complete(uploadId);
    expect(done.statusCode).toBe(201);
    await c.expectReplicated(hash, 1, [survivor]);
    await c.expectDownload(done.json().file, data);

    await victim.restart();
    await allUp();
    await repair(c.deps({ repairGraceMs: 0 }));
    await c.expectReplicated(hash, 2);
  });

  it('every upload node dies: a fresh node takes over and the lost chunks are asked for again', async () => {
    const data = random(6 * MiB);
    const hash = sha1(data);
    const { uploadId, chunks, nodeIds } = await open(data, 'both-die.bin');
    for (const i of [0, 1, 2])
      expect((await c.up.put(uploadId, i, chunks[i] as Buffer)).statusCode).toBe(204);
    const victims = await Promise.all(nodeIds.map((id) => c.handleOf(id)));
    await Promise.all(victims.map((h) => h.kill()));

    // The write fails on both, the upload moves to the third node, and this chunk is stored there.
    expect((await c.up.put(uploadId, 3, chunks[3] as Buffer)).statusCode).toBe(204);
    const session = (await c.up.get(uploadId)).json();
    expect(session.receivedChunks).toEqual([3]);
    const incomplete = await c.up.complete(uploadId);
    expect(incomplete.statusCode).toBe(409);
    expect(incomplete.json().error).toMatchObject({ code: 'incomplete', missing: [0, 1, 2, 4, 5] });
    for (const i of [0, 1, 2, 4, 5]) {
      expect((await c.up.put(uploadId, i, chunks[i] as Buffer)).statusCode).toBe(204);
    }
    const done = await c.up.complete(uploadId);
    expect(done.statusCode).toBe(201);
    const third = c.sshd.filter((h) => !victims.includes(h));
    await c.expectReplicated(hash, 1, third);
    await c.expectDownload(done.json().file, data);
    await Promise.all(victims.map((h) => h.restart()));
    await allUp();
  });

  it('every node dies before complete: 503, nothing registered, and complete works once they are back', async () => {
    const data = random(4 * MiB + 1);
    const hash = sha1(data);
    const { uploadId, chunks } = await open(data, 'all-die.bin');
    for (const [i, chunk] of chunks.entries())
      expect((await c.up.put(uploadId, i, chunk)).statusCode).toBe(204);
    await Promise.all(c.sshd.map((h) => h.kill()));
    await waitFor('the nodes down', async () => (await c.nodes()).every((n) => n.status === 'down'), 10_000);

    const res = await c.up.complete(uploadId);
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('storage_unavailable');
    expect(await c.t.app.services.repos.contents.findBySha1(hash)).toBeUndefined();
    expect(await listed('all-die.bin')).toBe(0);
    // A chunk sent now is refused the same way, and the upload keeps every acknowledged chunk.
    expect((await c.up.put(uploadId, 0, chunks[0] as Buffer)).statusCode).toBe(204);
    expect((await c.up.get(uploadId)).json().receivedChunks).toHaveLength(chunks.length);

    await Promise.all(c.sshd.map((h) => h.restart()));
    await allUp();
    const retried = await c.up.complete(uploadId);
    expect(retried.statusCode).toBe(201);
    expect(await listed('all-die.bin')).toBe(1);
    await c.expectReplicated(hash, 1);
    await repair(c.deps({ repairGraceMs: 0 }));
    await c.expectReplicated(hash, 2);
    await c.expectDownload(retried.json().file, data);
  });
});
