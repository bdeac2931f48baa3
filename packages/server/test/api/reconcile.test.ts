import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ReconcileDeps, reconcile } from '../../src/jobs/reconcile.ts';
import { JobRunner } from '../../src/jobs/runner.ts';
import { objectKey } from '../../src/storage/types.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { random, sha1 } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

const HOUR = 3600_000;

describe('reconcile: objects on nodes that no row knows', () => {
  let t: TestApp;
  let dir: string;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  const roots = new Map<string, string>();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-reconcile-'));
    t = await startTestApp({
      DFS_NODES: `local://${path.join(dir, 'a')},local://${path.join(dir, 'b')}`,
      DFS_REPLICAS: '1',
      DFS_CHUNK_SIZE: String(CHUNK),
      DFS_GC_GRACE_SECONDS: '3600',
    });
    alice = await t.user('alice');
    for (const node of await t.app.services.repos.nodes.list()) {
      roots.set(node.id, node.name.replace(/^local:/, ''));
    }
  });
  afterAll(async () => {
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Reconcile as if `aheadMs` had passed since the objects were written. */
  const run = (aheadMs: number) => {
    const { repos, cluster } = t.app.services;
    const deps: ReconcileDeps = {
      repos,
      cluster,
      log: t.app.log,
      now: () => Date.now() + aheadMs,
      gcGraceMs: t.config.gcGraceMs,
    };
    return reconcile(deps);
  };
  const objectOn = (nodeId: string, hash: string) => path.join(roots.get(nodeId)!, objectKey(hash));

  /** An object as a crash after the node's rename leaves it: published, never registered. */
  async function plant(nodeId: string, hash: string, bytes: Buffer): Promise<string> {
    const file = objectOn(nodeId, hash);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, bytes);
    return file;
  }

  async function uploaded(name: string) {
    const data = random(CHUNK + 123);
    const file = await uploader(t, alice.headers).upload(data, name);
    const content = (await t.app.services.repos.contents.findBySha1(file.sha1))!;
    const [row] = await t.app.services.repos.contents.replicasOf(content.id);
    const home = row!.node_id;
    const other = [...roots.keys()].find((id) => id !== home)!;
    const replicaOn = async (nodeId: string) =>
      (await t.app.services.repos.contents.replicasOf(content.id)).find((r) => r.node_id === nodeId);
    return { data, file, content, home, other, replicaOn };
  }

  it('keeps an unregistered object while young and deletes it once past the grace', async () => {
    const nodeId = [...roots.keys()][0]!;
    const bytes = random(5000);
    const orphan = await plant(nodeId, sha1(bytes), bytes);
    // Something under objects/ that is no content key is not ours to judge.
    const notAKey = path.join(roots.get(nodeId)!, 'objects', 'readme');
    await writeFile(notAKey, 'left by an admin');

    expect(await run(0)).toMatchObject({ strays: 0, deleted: 0 });
    expect(existsSync(orphan)).toBe(true);
    // Past DFS_GC_GRACE_SECONDS but not the floor that covers a slow replacement write.
    expect(await run(2 * HOUR)).toMatchObject({ strays: 0, deleted: 0 });
    expect(existsSync(orphan)).toBe(true);

    const report = await run(7 * HOUR);
    expect(report).toMatchObject({ strays: 1, deleted: 1, adopted: 0, failedNodes: 0 });
    expect(report.listed).toBeGreaterThanOrEqual(1);
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(notAKey)).toBe(true);
  });

  it('never deletes a registered object, whatever its replica state', async () => {
    const ok = await uploaded('kept.bin');
    const rotten = await uploaded('marked.bin');
    await t.app.services.repos.contents.setReplicaState(
      rotten.content.id,
      rotten.home,
      'corrupt',
      Date.now(),
    );

    const report = await run(7 * HOUR);
    expect(report).toMatchObject({ strays: 0, deleted: 0, adopted: 0 });
    expect(sha1(await readFile(objectOn(ok.home, ok.file.sha1)))).toBe(ok.file.sha1);
    expect(existsSync(objectOn(rotten.home, rotten.file.sha1))).toBe(true);
    const res = await t.app.inject({ url: `/api/files/${ok.file.id}/content`, headers: alice.headers });
    expect(res.rawPayload.equals(ok.data)).toBe(true);
  });

  it('adopts a verified copy on a node without a row for it, and deletes a wrong one', async () => {
    const good = await uploaded('adopt.bin');
    await mkdir(path.dirname(objectOn(good.other, good.file.sha1)), { recursive: true });
    await copyFile(objectOn(good.home, good.file.sha1), objectOn(good.other, good.file.sha1));
    const bad = await uploaded('wrong.bin');
    const wrong = await plant(bad.other, bad.file.sha1, random(bad.data.length));

    expect(await run(0)).toMatchObject({ strays: 0, deleted: 0, adopted: 0 });
    expect(await good.replicaOn(good.other)).toBeUndefined();

    expect(await run(7 * HOUR)).toMatchObject({ strays: 2, deleted: 1, adopted: 1 });
    expect((await good.replicaOn(good.other))?.state).toBe('ok');
    expect(sha1(await readFile(objectOn(good.other, good.file.sha1)))).toBe(good.file.sha1);
    expect(existsSync(wrong)).toBe(false);
    expect(await bad.replicaOn(bad.other)).toBeUndefined();
    // The one real copy of the wrong one's content is untouched.
    expect(sha1(await readFile(objectOn(bad.home, bad.file.sha1)))).toBe(bad.file.sha1);
  });

  it('runs as a leased background job', async () => {
    const { jobs, maintenance } = t.app.services;
    expect(maintenance.reconcile.name).toBe('reconcile');
    expect(await jobs.runOnce(maintenance.reconcile)).toBe(true);
  });

  it('runs soon after start unless an instance reconciled within its interval', async () => {
    const { repos, maintenance } = t.app.services;
    const reconcileJob = maintenance.reconcile;
    expect(reconcileJob.firstRunAfterMs).toBeLessThanOrEqual(10 * 60_000);
    let runs = 0;
    // The real job, started as an instance restarted at `at` would start it (sooner, for the test).
    const startAt = async (at: number) => {
      const runner = new JobRunner(repos, t.app.log, () => at);
      runner.start([
        {
          ...reconcileJob,
          firstRunAfterMs: 10,
          run: async () => {
            runs++;
            return reconcileJob.run();
          },
        },
      ]);
      await new Promise((r) => setTimeout(r, 300));
      await runner.stop();
    };
    const start = Date.now() + 7 * HOUR; // the last test's run is 7 hours old by then
    await startAt(start);
    expect(runs).toBe(1);
    // Restarted an hour later, and again five hours later: reconciled 1 and 5 hours ago, not due.
    await startAt(start + HOUR);
    await startAt(start + 5 * HOUR);
    expect(runs).toBe(1);
    // Six hours after the last run, the next start runs it, though no interval ever fired.
    await startAt(start + 6 * HOUR + 1);
    expect(runs).toBe(2);
  });
});
