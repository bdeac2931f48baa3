import { existsSync } from 'node:fs';
import { type SshdHandle, startSshd } from '@dfs/cluster/sshd';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppInstance, buildApp } from '../../src/app.ts';
import { repair } from '../../src/jobs/repair.ts';
import { errorCode } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { startCluster, type TestCluster, waitFor } from './harness.ts';

describe('draining and removing nodes', () => {
  let c: TestCluster;
  let extra: SshdHandle | undefined;
  let second: AppInstance | undefined;
  const files: Array<{ file: { id: string; sha1: string }; data: Buffer }> = [];
  beforeAll(async () => {
    c = await startCluster();
  });
  afterAll(async () => {
    await second?.close();
    await c?.close();
    await extra?.stop();
  });

  const post = (url: string, headers = c.admin.headers) => c.t.app.inject({ method: 'POST', url, headers });

  it('empties a drained node: no new writes, R copies elsewhere, then its copies are deleted', async () => {
    for (let i = 0; i < 10; i++) {
      const data = random(5_000 + i * 3_000);
      files.push({ data, file: await c.up.upload(data, `d${i}.bin`) });
    }
    const held = new Map<string, number>();
    for (const { file } of files)
      for (const r of await c.replicas(file.sha1)) held.set(r.node_id, (held.get(r.node_id) ?? 0) + 1);
    const drainedId = [...held.entries()].sort((p, q) => q[1] - p[1])[0]![0];
    const drained = await c.handleOf(drainedId);
    const stays = c.sshd.filter((h) => h !== drained);

    const user = await c.t.user('not-admin');
    expect((await post(`/api/nodes/${drainedId}/drain`, user.headers)).statusCode).toBe(403);
    expect((await c.t.app.inject({ method: 'POST', url: `/api/nodes/${drainedId}/drain` })).statusCode).toBe(
      401,
    );
    const unknown = await post('/api/nodes/no-such-node/drain');
    expect(unknown.statusCode).toBe(404);

    const res = await post(`/api/nodes/${drainedId}/drain`);
    expect(res.statusCode).toBe(200);
    expect(res.json().node).toMatchObject({ id: drainedId, status: 'draining', draining: true });
    expect(res.json().node.contents).toBe(held.get(drainedId));

    // No new writes go to it.
    for (let i = 0; i < 4; i++) {
      const data = random(9_000 + i);
      const file = await c.up.upload(data, `after-drain-${i}.bin`);
      files.push({ data, file });
      expect((await c.replicas(file.sha1)).map((r) => r.node_id)).not.toContain(drainedId);
    }

    const report = await repair(c.deps());
    expect(report).toMatchObject({ copied: held.get(drainedId), removed: held.get(drainedId), failed: 0 });
    for (const { file, data } of files) {
      await c.expectReplicated(file.sha1, 2, stays);
      expect((await c.replicas(file.sha1)).map((r) => r.node_id)).not.toContain(drainedId);
      expect(existsSync(c.objectPath(drained, file.sha1))).toBe(false);
      await c.expectDownload(file, data);
    }
    const node = (await c.nodes()).find((n) => n.id === drainedId)!;
    expect(node).toMatchObject({ status: 'draining', contents: 0 });
    // Nothing left to do: a second run is a no-op.
    expect(await repair(c.deps())).toMatchObject({ checked: 0 });

    const back = await post(`/api/nodes/${drainedId}/undrain`);
    expect(back.statusCode).toBe(200);
    expect(back.json().node).toMatchObject({ status: 'up', draining: false });
  });

  it('refuses to drain the last writable node', async () => {
    const ids = await Promise.all(c.sshd.map((h) => c.nodeId(h)));
    expect((await post(`/api/nodes/${ids[0]}/drain`)).statusCode).toBe(200);
    expect((await post(`/api/nodes/${ids[1]}/drain`)).statusCode).toBe(200);
    const last = await post(`/api/nodes/${ids[2]}/drain`);
    expect(last.statusCode).toBe(400);
    expect(errorCode(last)).toBe('bad_request');
    for (const id of ids) expect((await post(`/api/nodes/${id}/undrain`)).statusCode).toBe(200);
  });

  it('replaces a node removed from DFS_NODES and drains one named in DFS_DRAIN_NODES', async () => {
    const [keep, drainByConfig, removed] = c.sshd as [SshdHandle, SshdHandle, SshdHandle];
    const removedId = await c.nodeId(removed);
    const drainId = await c.nodeId(drainByConfig);
    extra = await startSshd();
    // The old instance goes away; a new one starts on the same database with the new node list.
    await c.t.app.services.cluster.stop();
    const config = {
      ...c.t.config,
      nodeUrls: [keep, drainByConfig, extra].map((h) => h.url('password')),
      drainNodes: [drainByConfig.url('password')],
    };
    await expect(
      buildApp({ ...config, drainNodes: ['sftp://nobody@example.invalid:22/x'] }, { logger: false }),
    ).rejects.toThrow(/DFS_DRAIN_NODES/);
    second = await buildApp(config, { logger: false });
    const deps = second.services.clusterJobs.deps;
    // Repair leaves a copy on a node it cannot reach; the first heartbeat's deadline (1 s here)
    // can pass on a busy machine while three SSH handshakes run, so wait for the next beats.
    const app = second;
    await waitFor('every configured node up', () => app.services.cluster.liveNodeIds().length === 3, 15_000);
    const report = await repair(deps);
    expect(report).toMatchObject({ failed: 0, short: 0 });
    const keepId = await c.nodeId(keep);
    const extraId = (await second.services.repos.nodes.list()).find((n) =>
      n.name.includes(`:${extra!.port}/`),
    )!.id;
    for (const { file, data } of files) {
      const content = (await second.services.repos.contents.findBySha1(file.sha1))!;
      const rows = await second.services.repos.contents.replicasOf(content.id);
      expect(rows.map((r) => r.node_id).sort()).toEqual([keepId, extraId].sort());
      expect(existsSync(c.objectPath(drainByConfig, file.sha1))).toBe(false);
      expect(existsSync(c.objectPath(extra, file.sha1))).toBe(true);
      const res = await second.inject({ url: `/api/files/${file.id}/content`, headers: c.admin.headers });
      expect(res.rawPayload.equals(data)).toBe(true);
    }
    const nodes = (await second.inject({ url: '/api/nodes', headers: c.admin.headers })).json();
    expect(nodes.items.find((n: { id: string }) => n.id === removedId)).toMatchObject({
      configured: false,
      status: 'down',
      contents: 0,
    });
    expect(nodes.items.find((n: { id: string }) => n.id === drainId)).toMatchObject({
      status: 'draining',
      contents: 0,
    });
    expect(nodes.underReplicated).toBe(0);
    // A drain from the config cannot be undone through the API.
    const undrain = await second.inject({
      method: 'POST',
      url: `/api/nodes/${drainId}/undrain`,
      headers: c.admin.headers,
    });
    expect(undrain.statusCode).toBe(400);
  });
});
