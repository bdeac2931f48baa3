import { Transform } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunksOf, random, sha1 } from '../support/bytes.ts';
import { startCluster, type TestCluster, waitFor } from './harness.ts';

const MiB = 1024 * 1024;

/**
 * Holds a node's incoming write once `after` bytes went through, until `release` is called: the
 * test kills the real sshd at that moment, so the put is certain to be in flight when it dies.
 */
function holdWrites(c: TestCluster, nodeId: string, after: number) {
  const driver = c.t.app.services.cluster.driver(nodeId)!;
  const put = driver.put;
  let reached: () => void = () => undefined;
  let release: () => void = () => undefined;
  const midway = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  driver.put = (key, source, size, options) => {
    let seen = 0;
    const gate = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        seen += chunk.length;
        if (seen - chunk.length <= after && seen > after) {
          reached();
          void released.then(() => callback(null, chunk));
        } else callback(null, chunk);
      },
    });
    // The driver destroys what it was given when it fails; the caller's stream must see that too.
    source.on('error', (error) => gate.destroy(error));
    gate.on('close', () => source.destroy());
    source.pipe(gate);
    return put.call(driver, key, gate, size, options);
  };
  return {
    midway,
    release: () => {
      driver.put = put;
      release();
    },
  };
}

describe('a node that dies while an upload completes', () => {
  let c: TestCluster;
  beforeAll(async () => {
    // Bigger chunks keep the many-MiB uploads below quick to send.
    c = await startCluster(3, { DFS_CHUNK_SIZE: String(MiB) });
  });
  afterAll(() => c?.close());

  /** Creates an upload and sends every chunk; returns its id. */
  async function staged(data: Buffer, name: string): Promise<string> {
    const created = await c.up.create({ name, size: data.length, sha1: sha1(data) });
    expect(created.statusCode).toBe(201);
    const { uploadId, chunkSize } = created.json();
    for (const [i, chunk] of chunksOf(data, chunkSize).entries()) {
      expect((await c.up.put(uploadId, i, chunk)).statusCode).toBe(204);
    }
    return uploadId;
  }

  async function listed(name: string): Promise<number> {
    const res = await c.t.app.inject({ url: `/api/files?q=${name}`, headers: c.admin.headers });
    return res.json().total;
  }

  it('completes with R copies on the nodes that stayed up (the replacement path)', async () => {
    const data = random(8 * MiB);
    const hash = sha1(data);
    const uploadId = await staged(data, 'one-dies.bin');
    const [home] = c.t.app.services.cluster.placement(hash, data.length);
    const victim = await c.handleOf(home!.id);
    const others = c.sshd.filter((h) => h !== victim);

    const hold = holdWrites(c, home!.id, 2 * MiB);
    const completing = c.up.complete(uploadId);
    await hold.midway;
    await victim.kill();
    hold.release();
    const res = await completing;

    expect(res.statusCode).toBe(201);
    const rows = await c.replicas(hash);
    expect(rows.map((r) => r.node_id)).not.toContain(home!.id);
    await c.expectReplicated(hash, 2, others);
    await c.expectDownload(res.json().file, data);
    await victim.restart();
  });

  it('fails cleanly when every node dies, registering nothing, and can be completed again', async () => {
    // Larger than what the fan-out buffers ahead of the held node, so no copy can finish first
    // (when one does, complete succeeds with that copy and repair adds the rest).
    const data = random(32 * MiB);
    const hash = sha1(data);
    const uploadId = await staged(data, 'all-die.bin');
    const [home] = c.t.app.services.cluster.placement(hash, data.length);

    const hold = holdWrites(c, home!.id, 2 * MiB);
    const completing = c.up.complete(uploadId);
    await hold.midway;
    await Promise.all(c.sshd.map((h) => h.kill()));
    hold.release();
    const res = await completing;

    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('storage_unavailable');
    expect(await c.t.app.services.repos.contents.findBySha1(hash)).toBeUndefined();
    expect(await listed('all-die.bin')).toBe(0);
    // The upload is still there with every chunk, ready for another try.
    const again = await c.up.get(uploadId);
    expect(again.statusCode).toBe(200);
    expect(again.json().receivedChunks).toHaveLength(32);

    await Promise.all(c.sshd.map((h) => h.restart()));
    await waitFor('the nodes back up', async () => (await c.nodes()).every((n) => n.status === 'up'));
    const retried = await c.up.complete(uploadId);
    expect(retried.statusCode).toBe(201);
    expect(await listed('all-die.bin')).toBe(1);
    await c.expectReplicated(hash, 2);
    await c.expectDownload(retried.json().file, data);
  });
});
