import { existsSync } from 'node:fs';
import { utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, sweep } from '../../src/jobs/maintenance.ts';
import { objectKey } from '../../src/storage/types.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { chunksOf, random, sha1 } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

describe('background maintenance', () => {
  let t: TestApp;
  let clock = Date.now();
  let alice: Awaited<ReturnType<TestApp['user']>>;
  const deps = () => ({
    repos: t.app.services.repos,
    cluster: t.app.services.cluster,
    log: t.app.log,
    now: () => clock,
    gcGraceMs: 3600_000,
  });
  const objectPath = (hash: string) => path.join(t.dataDir, 'nodes', 'local', objectKey(hash));

  beforeAll(async () => {
    t = await startTestApp(
      { DFS_CHUNK_SIZE: String(CHUNK), DFS_UPLOAD_EXPIRY_HOURS: '1', DFS_GC_GRACE_SECONDS: '3600' },
      { now: () => clock },
    );
    alice = await t.user('alice');
  });
  afterAll(() => t.close());

  it('sweeps expired uploads with their part files, and old part files without an upload', async () => {
    const up = uploader(t, alice.headers);
    const data = random(CHUNK * 2);
    const { uploadId } = (await up.create({ name: 'old.bin', size: data.length, sha1: sha1(data) })).json();
    await up.put(uploadId, 0, chunksOf(data, CHUNK)[0] as Buffer);
    const parts = path.join(t.dataDir, 'nodes', 'local', '.parts');
    const part = path.join(parts, uploadId);
    // A part whose upload row is gone (a crash between the two), old enough to be no live write's,
    // and a fresh one that may belong to a one-request upload still running.
    const stray = path.join(parts, '00000000-0000-4000-8000-000000000000');
    const fresh = path.join(parts, '00000000-0000-4000-8000-000000000001');
    await writeFile(stray, 'left behind');
    await writeFile(fresh, 'being written');
    const old = new Date(Date.now() - 7 * 3600_000);
    await utimes(stray, old, old);
    await utimes(part, old, old);

    expect(await sweep(deps())).toEqual({ uploads: 0, strays: 1 });
    expect(existsSync(stray)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    // An idle upload keeps its part however old the file is: the session decides, not the mtime.
    expect(existsSync(part)).toBe(true);
    expect((await up.get(uploadId)).statusCode).toBe(200);

    clock += 2 * 3600_000;
    const expired = await up.put(uploadId, 1, chunksOf(data, CHUNK)[1] as Buffer);
    expect(expired.statusCode).toBe(410);
    expect(await sweep(deps())).toEqual({ uploads: 1, strays: 0 });
    expect((await up.get(uploadId)).statusCode).toBe(404);
    expect(existsSync(part)).toBe(false);
  });

  it('collects content only after its last reference is gone and the grace period passed', async () => {
    const up = uploader(t, alice.headers);
    const data = random(CHUNK + 1);
    const file = await up.upload(data, 'gc.bin');
    const copy = await up.upload(data, 'gc-copy.bin');
    expect(copy.instant).toBe(true);
    expect(existsSync(objectPath(file.sha1))).toBe(true);

    const purge = async (id: string) => {
      await t.app.inject({ method: 'DELETE', url: `/api/files/${id}`, headers: alice.headers });
      await t.app.inject({ method: 'DELETE', url: `/api/trash/${id}`, headers: alice.headers });
    };
    await purge(file.id);
    clock += 2 * 3600_000;
    expect(await collect(deps())).toBe(0); // the copy still references it
    expect(existsSync(objectPath(file.sha1))).toBe(true);

    await purge(copy.id);
    expect(await collect(deps())).toBe(0); // within the grace period
    clock += 3600_000 + 1;
    expect(await collect(deps())).toBe(1);
    expect(existsSync(objectPath(file.sha1))).toBe(false);
    expect(await t.app.services.repos.contents.findBySha1(file.sha1)).toBeUndefined();
    // The same bytes can be uploaded again afterwards, as new content.
    const again = await up.upload(data, 'back.bin');
    expect(again.instant).toBe(false);
    expect(existsSync(objectPath(file.sha1))).toBe(true);
  });

  it('keeps trashed files: only delete-forever releases content', async () => {
    const up = uploader(t, alice.headers);
    const file = await up.upload(random(500), 'trashed.bin');
    await t.app.inject({ method: 'DELETE', url: `/api/files/${file.id}`, headers: alice.headers });
    clock += 10 * 3600_000;
    await collect(deps());
    expect(existsSync(objectPath(file.sha1))).toBe(true);
  });

  it('runs a job on one instance at a time through its database lease', async () => {
    const { JobRunner } = await import('../../src/jobs/runner.ts');
    const a = new JobRunner(t.app.services.repos, t.app.log, () => clock);
    const b = new JobRunner(t.app.services.repos, t.app.log, () => clock);
    let release: () => void = () => undefined;
    let runs = 0;
    const job = {
      name: 'lease-test',
      everyMs: 60_000,
      run: () =>
        new Promise<void>((resolve) => {
          runs++;
          release = resolve;
        }),
    };
    const first = a.runOnce(job);
    await new Promise((r) => setTimeout(r, 50));
    expect(await b.runOnce(job)).toBe(false);
    release();
    expect(await first).toBe(true);
    const second = b.runOnce(job);
    await new Promise((r) => setTimeout(r, 50));
    release();
    expect(await second).toBe(true);
    expect(runs).toBe(2);
  });
});
