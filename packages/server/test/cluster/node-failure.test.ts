import type { SshdHandle } from '@dfs/cluster/sshd';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { repair } from '../../src/jobs/repair.ts';
import { random, sha1 } from '../support/bytes.ts';
import { HEARTBEAT_MS, startCluster, type TestCluster, waitFor } from './harness.ts';

const MiB = 1024 * 1024;

describe('a storage node that dies', () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster();
  });
  afterAll(() => c?.close());

  it('keeps every file readable, shows the node down, writes around it, and repair restores R', async () => {
    const files: Array<{ file: { id: string; sha1: string }; data: Buffer }> = [];
    for (let i = 0; i < 8; i++) {
      const data = random(10_000 + i * 41_000);
      files.push({ data, file: await c.up.upload(data, `before-${i}.bin`) });
    }
    for (const { file } of files) await c.expectReplicated(file.sha1, 2);

    // The victim is the node holding the most copies, so many reads start on it.
    const held = new Map<string, number>();
    for (const { file } of files)
      for (const r of await c.replicas(file.sha1)) held.set(r.node_id, (held.get(r.node_id) ?? 0) + 1);
    const victimId = [...held.entries()].sort((p, q) => q[1] - p[1])[0]![0];
    const victim = await c.handleOf(victimId);
    const live = c.sshd.filter((h) => h !== victim);
    await victim.kill();
    const killedAt = Date.now();

    // Before any heartbeat noticed: every read falls over to the other copy, invisibly.
    const warn = vi.spyOn(c.t.app.log, 'warn');
    for (const { file, data } of files) await c.expectDownload(file, data);
    expect(warn.mock.calls.some((call) => call[1] === 'replica read failed, trying the next')).toBe(true);
    warn.mockRestore();

    await waitFor(
      'the node to show down',
      async () => (await c.nodes()).find((n) => n.id === victimId)?.status === 'down',
    );
    expect(Date.now() - killedAt).toBeLessThanOrEqual(3 * HEARTBEAT_MS + 700);
    const shown = (await c.nodes()).find((n) => n.id === victimId)!;
    expect(shown.downSince).toEqual(expect.any(String));
    expect(Date.parse(shown.lastHeartbeatAt as string)).toBeLessThanOrEqual(killedAt);

    // New uploads get R copies on the nodes that are up.
    const during: typeof files = [];
    for (let i = 0; i < 3; i++) {
      const data = random(30_000 + i);
      during.push({ data, file: await c.up.upload(data, `during-${i}.bin`) });
    }
    for (const { file } of during) {
      await c.expectReplicated(file.sha1, 2, live);
      expect((await c.replicas(file.sha1)).map((r) => r.node_id)).not.toContain(victimId);
    }

    // Within the grace period a down node's copies still count: no copying yet (a reboot is not
    // a reason to move terabytes), though the nodes page already shows the risk.
    expect(await repair(c.deps())).toMatchObject({ copied: 0, failed: 0 });
    const under = (await c.t.app.inject({ url: '/api/nodes', headers: c.admin.headers })).json();
    expect(under.underReplicated).toBeGreaterThan(0);

    // Past the grace period, repair copies what the victim held onto the other live node.
    const onVictim = [];
    for (const { file } of files)
      if ((await c.replicas(file.sha1)).some((r) => r.node_id === victimId)) onVictim.push(file.sha1);
    const report = await repair(c.deps({ repairGraceMs: 0 }));
    expect(report).toMatchObject({ copied: onVictim.length, failed: 0, short: 0 });
    for (const { file, data } of [...files, ...during]) {
      await c.expectReplicated(file.sha1, 2, live);
      await c.expectDownload(file, data);
    }
    const after = (await c.t.app.inject({ url: '/api/nodes', headers: c.admin.headers })).json();
    expect(after.underReplicated).toBe(0);
    // The victim's rows stay: when it comes back, its copies are good again.
    expect((await c.nodes()).find((n) => n.id === victimId)?.contents).toBe(onVictim.length);

    // A second node dies too: a new upload gets the one copy the cluster can hold...
    const [other, last] = live as [SshdHandle, SshdHandle];
    await other.kill();
    const otherId = await c.nodeId(other);
    await waitFor(
      'the second node to show down',
      async () => (await c.nodes()).find((n) => n.id === otherId)?.status === 'down',
    );
    const lonely = random(50_000);
    const lonelyFile = await c.up.upload(lonely, 'lonely.bin');
    expect((await c.replicas(lonelyFile.sha1)).map((r) => r.node_id)).toEqual([await c.nodeId(last)]);

    // ...and once the nodes return on their own, repair restores R for it.
    await Promise.all([victim.restart(), other.restart()]);
    await waitFor('both nodes back up', async () => (await c.nodes()).every((n) => n.status === 'up'));
    expect(await repair(c.deps())).toMatchObject({ copied: 1, failed: 0, short: 0 });
    await c.expectReplicated(lonelyFile.sha1, 2);
    for (const { file, data } of [...files, ...during, { file: lonelyFile, data: lonely }]) {
      await c.expectDownload(file, data);
    }
  });

  it('resumes a download from another replica when its node dies mid-stream', async () => {
    const data = random(24 * MiB);
    const file = await c.uploadSimple(data, 'big.bin');
    const { contents, cluster } = c.t.app.services;
    const content = (await c.t.app.services.repos.contents.findBySha1(file.sha1))!;
    const rows = await c.replicas(file.sha1);
    const first = cluster.readOrder(
      file.sha1,
      rows.map((r) => r.node_id),
    )[0]!;
    const warn = vi.spyOn(c.t.app.log, 'warn');
    const stream = await contents.open(content);
    const parts: Buffer[] = [];
    let killed: Promise<void> | undefined;
    let received = 0;
    for await (const chunk of stream) {
      parts.push(chunk as Buffer);
      received += (chunk as Buffer).length;
      if (!killed && received > 2 * MiB) killed = (await c.handleOf(first)).kill();
      if (killed) await killed;
    }
    expect(Buffer.concat(parts).length).toBe(data.length);
    expect(sha1(Buffer.concat(parts))).toBe(sha1(data));
    expect(
      warn.mock.calls.some((call) => call[1] === 'replica failed mid-read, resuming from the next'),
    ).toBe(true);
    warn.mockRestore();
    await (await c.handleOf(first)).restart();
  });
});
