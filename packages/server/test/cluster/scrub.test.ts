import { existsSync } from 'node:fs';
import { open, readFile, rm, truncate } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repair } from '../../src/jobs/repair.ts';
import { JobRunner } from '../../src/jobs/runner.ts';
import { scrub } from '../../src/jobs/scrub.ts';
import { random, sha1 } from '../support/bytes.ts';
import { startCluster, type TestCluster } from './harness.ts';

/** Flips bytes in the middle of a file without changing its size: quiet bit rot. */
async function rot(file: string): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const { size } = await fh.stat();
    const at = Math.floor(size / 2);
    const byte = Buffer.alloc(1);
    await fh.read(byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ 0xff;
    await fh.write(byte, 0, 1, at);
  } finally {
    await fh.close();
  }
}

describe('damage behind the server’s back', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster();
  });
  afterAll(() => c?.close());

  /** The node a read of this content tries first, with its sshd. */
  async function firstReplica(hash: string) {
    const rows = await c.replicas(hash);
    const nodeId = c.t.app.services.cluster.readOrder(
      hash,
      rows.map((r) => r.node_id),
    )[0]!;
    return { nodeId, handle: await c.handleOf(nodeId) };
  }

  it('scrub finds rotten, truncated and vanished copies and restores them with the right bytes', async () => {
    const files = [];
    for (let i = 0; i < 5; i++) {
      const data = random(40_000 + i * 10_000);
      files.push({ data, file: await c.up.upload(data, `s${i}.bin`) });
    }
    const damage = [rot, (p: string) => truncate(p, 1000), (p: string) => rm(p)] as const;
    const damaged: string[] = [];
    for (const [i, hurt] of damage.entries()) {
      const { file } = files[i]!;
      const { handle } = await firstReplica(file.sha1);
      const target = c.objectPath(handle, file.sha1);
      await hurt(target);
      damaged.push(target);
    }

    const report = await scrub(c.deps());
    expect(report).toMatchObject({ corrupt: 2, missing: 1, skipped: 0 });
    expect(report.checked).toBe(files.length * 2);
    expect(report.repair).toMatchObject({ copied: 3, failed: 0, short: 0 });
    for (const [i, path] of damaged.entries()) {
      // Restored in place: the damaged node is the content's home in placement order.
      expect(existsSync(path)).toBe(true);
      expect(sha1(await readFile(path))).toBe(files[i]!.file.sha1);
    }
    for (const { file, data } of files) {
      await c.expectReplicated(file.sha1, 2);
      expect((await c.replicas(file.sha1)).every((r) => r.state === 'ok')).toBe(true);
      await c.expectDownload(file, data);
    }
    // A clean cluster scrubs clean.
    expect(await scrub(c.deps())).toMatchObject({ corrupt: 0, missing: 0, checked: files.length * 2 });
  });

  it('reads past a vanished copy, marks it missing, and repair puts it back', async () => {
    const data = random(70_000);
    const file = await c.up.upload(data, 'vanish.bin');
    const { nodeId, handle } = await firstReplica(file.sha1);
    await rm(c.objectPath(handle, file.sha1));

    await c.expectDownload(file, data);
    const row = (await c.replicas(file.sha1)).find((r) => r.node_id === nodeId);
    expect(row?.state).toBe('missing');
    expect((await c.nodes()).find((n) => n.id === nodeId)?.missing).toBe(1);

    expect(await repair(c.deps())).toMatchObject({ copied: 1, failed: 0 });
    expect(sha1(await readFile(c.objectPath(handle, file.sha1)))).toBe(file.sha1);
    await c.expectReplicated(file.sha1, 2);
    expect((await c.nodes()).find((n) => n.id === nodeId)?.missing).toBe(0);
  });

  it('never serves bytes from a rotten copy, and stops using it', async () => {
    const data = random(300_000);
    const file = await c.up.upload(data, 'rotten.bin');
    const { nodeId, handle } = await firstReplica(file.sha1);
    await rot(c.objectPath(handle, file.sha1));

    // The rotten block fails its hash before any of it is sent; the other copy serves it instead.
    await c.expectDownload(file, data);
    expect((await c.replicas(file.sha1)).find((r) => r.node_id === nodeId)?.state).toBe('corrupt');
    // A copy is never made from a damaged source: repair writes good bytes over the rotten ones.
    expect(await repair(c.deps())).toMatchObject({ copied: 1, failed: 0 });
    expect(sha1(await readFile(c.objectPath(handle, file.sha1)))).toBe(file.sha1);
  });

  it('keeps to its bytes-per-second budget and runs on one instance at a time', async () => {
    const rate = 2 * 1024 * 1024;
    const started = performance.now();
    const report = await scrub(c.deps(), { bytesPerSecond: rate });
    const seconds = (performance.now() - started) / 1000;
    expect(report.bytes).toBeGreaterThan(rate / 2);
    expect(report.bytes / seconds).toBeLessThanOrEqual(rate * 1.05);

    const { repos } = c.t.app.services;
    const one = new JobRunner(repos, c.t.app.log, Date.now);
    const two = new JobRunner(repos, c.t.app.log, Date.now);
    const job = {
      ...c.t.app.services.clusterJobs.scrub,
      run: () => scrub(c.deps(), { bytesPerSecond: rate }).then(() => undefined),
    };
    const [first, second] = await Promise.all([one.runOnce(job), two.runOnce(job)]);
    expect([first, second].sort()).toEqual([false, true]);
  });
});
