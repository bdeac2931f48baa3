import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect } from '../../src/jobs/maintenance.ts';
import { RetentionService } from '../../src/services/history/retention.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { random, sha1 } from '../support/bytes.ts';
import { postForm } from '../support/uploads.ts';

const M = 60_000;
const H = 60 * M;
const D = 24 * H;
const W = 7 * D;

interface Version {
  id: string;
  sha1: string;
  size: number;
  current: boolean;
  free: boolean;
}

type User = Awaited<ReturnType<TestApp['user']>>;

describe('version retention', () => {
  let t: TestApp;
  // Whole epoch weeks, so the expected buckets below are plain arithmetic.
  const base = Math.floor(Date.now() / W) * W - 10 * W;
  let clock = base;
  let root: User;

  beforeAll(async () => {
    t = await startTestApp({ DFS_VERSIONS_MAX_SHARE: '0.5', DFS_SESSION_DAYS: '3650' }, { now: () => clock });
    root = await t.user('root');
  });
  afterAll(() => t.close());

  const api = (user: User, method: string, url: string, payload?: object) =>
    t.app.inject({ method: method as 'GET', url, headers: user.headers, ...(payload ? { payload } : {}) });
  const put = async (user: User, name: string, data: Buffer) => {
    const res = await postForm(t, user.headers, name, data, undefined, { onConflict: 'replace' });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().file as { id: string };
  };
  const versionsOf = async (user: User, id: string) => {
    const res = await api(user, 'GET', `/api/files/${id}/versions`);
    expect(res.statusCode, res.body).toBe(200);
    return (res.json() as { items: Version[] }).items;
  };
  const kept = async (user: User, id: string) =>
    (await versionsOf(user, id)).filter((v) => !v.current).map((v) => v.sha1);
  const runJob = async () => {
    expect(await t.app.services.jobs.runOnce(t.app.services.maintenance.versions)).toBe(true);
  };
  const stored = async (data: Buffer) =>
    (await t.app.services.repos.contents.findBySha1(sha1(data))) !== undefined;
  const collectAll = async () => {
    // Past the grace period from the moment the versions let their contents go.
    clock += 2 * H;
    return collect({
      repos: t.app.services.repos,
      cluster: t.app.services.cluster,
      log: t.app.log,
      now: () => clock,
      gcGraceMs: H,
    });
  };
  const setQuota = async (user: User, quotaBytes: number) => {
    const res = await api(root, 'PATCH', `/api/admin/users/${user.id}`, { quotaBytes });
    expect(res.statusCode, res.body).toBe(200);
  };
  const purge = async (user: User, id: string) => {
    expect((await api(user, 'DELETE', `/api/files/${id}`)).statusCode).toBe(204);
    expect((await api(user, 'DELETE', `/api/trash/${id}`)).statusCode).toBe(204);
  };

  it('thins by age: all for a day, one per hour for a week, per day for a month, per week after', async () => {
    const alice = await t.user('alice');
    // When each new content replaced the one before (from `base`, an epoch week's start); the
    // job finally runs at `now`, 63.5 days in. Comments: what each group tests, by age then.
    const replacements = [
      // More than 30 days old, week 0: only the newest of the week stays.
      1 * D,
      2 * D,
      3 * D,
      // Week 1, alone.
      8 * D,
      // Week 4: 29 d and 33 d are weekly (the newer stays); 34 d is under 30 days old, daily.
      29 * D,
      33 * D,
      34 * D,
      // 7 to 30 days old: the newest of day 40 stays; day 45 alone.
      40 * D + 1 * H,
      40 * D + 5 * H,
      40 * D + 23 * H,
      45 * D + 2 * H,
      // 1 to 7 days old: the newest of one hour; another hour alone.
      58 * D + 3 * H + 1 * M,
      58 * D + 3 * H + 20 * M,
      58 * D + 3 * H + 59 * M,
      60 * D + 30 * M,
      // Under a day old: all stay, even within one minute.
      62 * D + 13 * H,
      62 * D + 13 * H + 1 * M,
      62 * D + 13 * H + 2 * M,
    ];
    const now = 63 * D + 12 * H;
    const dropped = new Set([
      1 * D,
      2 * D,
      29 * D,
      40 * D + 1 * H,
      40 * D + 5 * H,
      58 * D + 3 * H + 1 * M,
      58 * D + 3 * H + 20 * M,
    ]);
    clock = base + 12 * H;
    const contents = [random(100)];
    const file = await put(alice, 'diary.txt', contents[0]!);
    // The version replaced at replacements[i] holds contents[i], the one before.
    const versionAt = new Map<number, Buffer>();
    for (const at of replacements) {
      if (at === 45 * D + 2 * H) {
        clock = base + 45 * D + 1 * H;
        // A run part-way: only week 0's older two are due yet (the others are finer buckets then).
        await runJob();
        const expected = replacements
          .filter((r) => r < clock - base && r !== 1 * D && r !== 2 * D)
          .reverse()
          .map((r) => sha1(versionAt.get(r)!));
        expect(await kept(alice, file.id)).toEqual(expected);
      }
      clock = base + at;
      const data = random(100);
      versionAt.set(at, contents.at(-1)!);
      contents.push(data);
      await put(alice, 'diary.txt', data);
    }
    // All but the two the run part-way took.
    expect(await kept(alice, file.id)).toHaveLength(replacements.length - 2);
    clock = base + now;
    await runJob();
    const survivors = replacements.filter((at) => !dropped.has(at));
    expect(await kept(alice, file.id)).toEqual(survivors.reverse().map((at) => sha1(versionAt.get(at)!)));
    // The current content is not a version: untouched.
    expect((await versionsOf(alice, file.id))[0]).toMatchObject({
      current: true,
      sha1: sha1(contents.at(-1)!),
    });
    // The collector takes what the thinned versions held and nothing a kept one holds.
    expect(await collectAll()).toBe(dropped.size);
    for (const at of replacements) expect(await stored(versionAt.get(at)!)).toBe(!dropped.has(at));
    const oldest = (await versionsOf(alice, file.id)).at(-1)!;
    const bytes = await api(alice, 'GET', `/api/files/${file.id}/versions/${oldest.id}/content`);
    expect(bytes.statusCode).toBe(200);
    expect(bytes.rawPayload.equals(versionAt.get(3 * D)!)).toBe(true);
  });

  it("caps a user's versions at their share of the quota, oldest first, counting free ones as nothing", async () => {
    const bob = await t.user('bob');
    const carol = await t.user('carol');
    // Versions may cost 5,000 bytes.
    await setQuota(bob, 10_000);
    const c = [1, 2, 3, 4, 5].map(() => random(1500));
    const s1 = random(2000);
    clock += M;
    const capFile = await put(bob, 'cap.bin', c[0]!);
    const shared = await put(bob, 'shared.bin', s1);
    // Another user's file has s1's bytes: bob's version of it costs nothing.
    const carolCopy = await put(carol, 'copy.bin', s1);
    clock += M;
    await put(bob, 'cap.bin', c[1]!);
    clock += M;
    await put(bob, 'shared.bin', random(1000));
    for (const data of c.slice(2)) {
      clock += M;
      await put(bob, 'cap.bin', data);
    }
    const before = await versionsOf(bob, shared.id);
    expect(before.map((v) => [v.current, v.free])).toEqual([
      [true, false],
      [false, true],
    ]);
    expect((await versionsOf(bob, capFile.id)).every((v) => !v.free)).toBe(true);
    // Costly: c0..c3, 6,000 bytes. Newest first c3, c2, c1 make 4,500; c0 passes the cap. s1 is
    // older than c1 but free: had it counted, it would go too.
    await runJob();
    expect(await kept(bob, capFile.id)).toEqual([sha1(c[3]!), sha1(c[2]!), sha1(c[1]!)]);
    expect(await kept(bob, shared.id)).toEqual([sha1(s1)]);
    // Versions never count against the upload quota: 2,500 bytes of files, 4,500 of versions.
    const big = await postForm(t, bob.headers, 'big.bin', random(7000));
    expect(big.statusCode, big.body).toBe(201);
    // Alice's versions thin on as time goes by, so what the collector takes is checked by content.
    await collectAll();
    expect(await stored(c[0]!)).toBe(false);
    for (const data of [c[1]!, c[2]!, c[3]!, s1]) expect(await stored(data)).toBe(true);

    // Carol deletes her copy for good: s1 costs now (and says so), and it is the oldest past the cap.
    await purge(carol, carolCopy.id);
    expect((await versionsOf(bob, shared.id))[1]).toMatchObject({ sha1: sha1(s1), free: false });
    await runJob();
    expect(await kept(bob, shared.id)).toEqual([]);
    expect(await kept(bob, capFile.id)).toEqual([sha1(c[3]!), sha1(c[2]!), sha1(c[1]!)]);
    await collectAll();
    expect(await stored(s1)).toBe(false);
    const version = (await versionsOf(bob, capFile.id))[3]!;
    const bytes = await api(bob, 'GET', `/api/files/${capFile.id}/versions/${version.id}/content`);
    expect(bytes.rawPayload.equals(c[1]!)).toBe(true);
  });

  it("counts a content several of a user's versions share once, and resumes a run stopped at its budget", async () => {
    const erin = await t.user('erin');
    // Versions may cost 2,000 bytes.
    await setQuota(erin, 4000);
    const [d00, d0] = [random(300), random(300)];
    const [d1, d2, d3, d4] = [random(800), random(800), random(800), random(800)];
    clock += M;
    const file = await put(erin, 'dup.bin', d00);
    for (const data of [d0, d1, d2, d1, d3]) {
      clock += M;
      await put(erin, 'dup.bin', data);
    }
    // Newest first d1, d2, d1, d0, d00: with d1 counted once, d0 makes 1,900 bytes and d00 passes
    // the cap, so d00 alone goes (each row counted, d1 twice would pass it before d0).
    await runJob();
    expect(await kept(erin, file.id)).toEqual([sha1(d1), sha1(d2), sha1(d1), sha1(d0)]);
    clock += M;
    await put(erin, 'dup.bin', d4);
    // Now d3, d1, d2 make 2,400: d2 goes, and d0 older still; the older d1 stays, as the kept
    // newer one has its bytes.
    // With no time budget, each run does one file, user or page of deletions and stops; the
    // next one goes on from there, and together they do what one run would.
    const retention = new RetentionService(t.app.services.repos, t.app.services.limits, {
      maxShare: 0.5,
      now: () => clock,
    });
    let runs = 0;
    let capped = 0;
    for (let more = true; more; runs++) {
      const report = await retention.run(0);
      capped += report.capped;
      more = report.more;
    }
    expect(runs).toBeGreaterThan(2);
    expect(capped).toBe(2);
    expect(await kept(erin, file.id)).toEqual([sha1(d3), sha1(d1), sha1(d1)]);
    await collectAll();
    for (const data of [d00, d0, d2]) expect(await stored(data)).toBe(false);
    for (const data of [d1, d3, d4]) expect(await stored(data)).toBe(true);
  });

  it('keeps every version of a user without a quota (thinning only)', async () => {
    const dave = await t.user('dave');
    clock += M;
    const blobs = [random(50_000), random(50_000), random(50_000)];
    const file = await put(dave, 'big.bin', blobs[0]!);
    for (const data of blobs.slice(1)) {
      clock += M;
      await put(dave, 'big.bin', data);
    }
    await runJob();
    expect(await kept(dave, file.id)).toEqual([sha1(blobs[1]!), sha1(blobs[0]!)]);
  });
});
