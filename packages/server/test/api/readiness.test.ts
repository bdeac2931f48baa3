import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/knex.ts';
import { ReadinessCheck } from '../../src/services/operations/readiness.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/** `/readyz` says every reason it is not ready: the database, pending migrations, nodes below DFS_REPLICAS. */
let t: TestApp;
let clock = 1_800_000_000_000;
let nodeB: string;

beforeAll(async () => {
  const nodes = path.join(process.env.TMPDIR ?? '/tmp', `dfs-readyz-${process.pid}-${Date.now()}`);
  nodeB = path.join(nodes, 'b');
  t = await startTestApp(
    { DFS_NODES: `local://${path.join(nodes, 'a')},local://${nodeB}`, DFS_REPLICAS: '2' },
    { now: () => clock },
  );
});

afterAll(async () => {
  await t?.close();
  await rm(path.dirname(nodeB), { recursive: true, force: true });
});

describe('/readyz', () => {
  it('is ready with the database up, no migration pending and DFS_REPLICAS nodes up', async () => {
    const res = await t.app.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', liveNodes: 2 });
  });

  it('names the pending migrations, and reads the list again until they have run', async () => {
    const db = t.app.services.db;
    const last = (await db('knex_migrations').orderBy('id', 'desc').first()) as { id: number; name: string };
    await db('knex_migrations').where({ id: last.id }).delete();
    try {
      // The list is read at start and cached: a probe costs no migrations query while all ran.
      expect((await t.app.inject({ url: '/readyz' })).statusCode).toBe(200);
      t.app.services.readiness.invalidate();
      const res = await t.app.inject({ url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json().error).toMatchObject({
        code: 'not_ready',
        reasons: [{ code: 'migrations_pending', migrations: [last.name] }],
      });
    } finally {
      await db('knex_migrations').insert(last);
    }
    // Still cached within the re-check period, read again after it.
    expect((await t.app.inject({ url: '/readyz' })).statusCode).toBe(503);
    clock += 5_000;
    expect((await t.app.inject({ url: '/readyz' })).statusCode).toBe(200);
  });

  it('is not ready with fewer nodes up than DFS_REPLICAS, and says how many', async () => {
    // A file where the node's directory was: the heartbeat cannot make the directory again.
    await rm(nodeB, { recursive: true, force: true });
    await writeFile(nodeB, 'not a directory');
    await t.app.services.cluster.heartbeat();
    await t.app.services.cluster.heartbeat();
    const res = await t.app.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.reasons).toEqual([
      expect.objectContaining({ code: 'nodes', live: 1, required: 2, configured: 2, replicas: 2 }),
    ]);
    await rm(nodeB);
    await mkdir(nodeB);
    await t.app.services.cluster.heartbeat();
    expect((await t.app.inject({ url: '/readyz' })).statusCode).toBe(200);
  });

  it('lists an unreachable database together with the other reasons', async () => {
    const unreachable = createDb('mysql://dfs:x@127.0.0.1:1/none');
    try {
      const check = new ReadinessCheck(unreachable, t.app.services.cluster, {
        replicas: 2,
        now: () => clock,
      });
      await rm(nodeB, { recursive: true, force: true });
      await writeFile(nodeB, 'not a directory');
      await t.app.services.cluster.heartbeat();
      await t.app.services.cluster.heartbeat();
      const { ready, reasons } = await check.check();
      expect(ready).toBe(false);
      expect(reasons.map((reason) => reason.code)).toEqual(['database', 'nodes']);
      expect(reasons[0]!.message).toMatch(/^database unreachable: /);
    } finally {
      await unreachable.destroy();
    }
  });
});
