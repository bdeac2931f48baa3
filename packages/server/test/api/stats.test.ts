import type { StatsResponse } from '@dfs/shared';
import { Counter, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryCounters, StatsService } from '../../src/services/operations/stats.ts';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { uploader } from '../support/uploads.ts';

const HOUR = 3600_000;

describe('the dashboard series (GET /api/admin/stats)', () => {
  let t: TestApp;
  let admin: Record<string, string>;
  let user: Record<string, string>;

  const stats = async (range?: string) => {
    const res = await t.app.inject({
      url: `/api/admin/stats${range ? `?range=${range}` : ''}`,
      headers: admin,
    });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as StatsResponse;
  };
  const sample = async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/admin/stats/sample', headers: admin });
    expect(res.statusCode, res.body).toBe(204);
  };
  // Whole-series sums and the latest sampled level: an hour may turn between traffic and reading.
  const sum = (values: number[]) => values.reduce((x, y) => x + y, 0);
  const lastOf = (values: Array<number | null>) => values.filter((v) => v !== null).at(-1);

  beforeAll(async () => {
    t = await startTestApp({ DFS_REPLICAS: '1' });
    admin = (await t.user('admin')).headers;
    user = (await t.user('someone')).headers;
  });
  afterAll(() => t?.close());

  it('answers an empty series and a snapshot before any sample', async () => {
    const body = await stats();
    expect(body.range).toBe('24h');
    expect(body.step).toBe('hour');
    expect(body.times).toHaveLength(24);
    expect(body.snapshot.lastSampleAt).toBeNull();
    expect(body.series.uploadsStored).toEqual(new Array(24).fill(0));
    expect(body.series.logicalBytes).toEqual(new Array(24).fill(null));
  });

  it('shows real uploads, downloads, bytes, dedupe and replicas after a sample', async () => {
    const up = uploader(t, user);
    const a = random(70_000);
    const b = random(30_000);
    await up.upload(a, 'a.bin');
    await up.upload(b, 'b.bin');
    // The same bytes again: an instant upload, and 70,000 bytes that dedupe saves.
    const copy = await up.upload(a, 'copy of a.bin');
    expect(copy.instant).toBe(true);
    for (let i = 0; i < 2; i++) {
      const res = await t.app.inject({ url: `/api/files/${copy.id}/content`, headers: user });
      expect(res.statusCode).toBe(200);
    }
    await sample();

    const body = await stats();
    const s = body.series;
    expect(sum(s.uploadsStored)).toBe(2);
    expect(sum(s.uploadsInstant)).toBe(1);
    expect(sum(s.downloads)).toBe(2);
    expect(sum(s.bytesIn)).toBeGreaterThanOrEqual(a.length + b.length);
    expect(sum(s.bytesOut)).toBe(2 * a.length);
    expect(sum(s.errors5xx)).toBe(0);
    expect(lastOf(s.logicalBytes)).toBe(2 * a.length + b.length);
    expect(lastOf(s.uniqueBytes)).toBe(a.length + b.length);
    expect(lastOf(s.replicasOk)).toBe(2);
    expect(lastOf(s.activeUsersHour)).toBe(2);
    expect(s.nodes).toHaveLength(1);
    expect(lastOf(s.nodes[0]!.storedBytes)).toBe(a.length + b.length);

    const now = body.snapshot;
    expect(now.lastSampleAt).not.toBeNull();
    expect(now.dedupe).toEqual({
      logicalBytes: 2 * a.length + b.length,
      uniqueBytes: a.length + b.length,
      savedBytes: a.length,
    });
    expect(now.replicas).toEqual({ ok: 2, missing: 0, corrupt: 0 });
    expect(now.activeUsers).toEqual({ hour: 2, day: 2 });
    expect(now.nodes).toHaveLength(1);
    expect(now.nodes[0]).toMatchObject({ status: 'up', storedBytes: a.length + b.length });

    // A sample adds only what happened since the one before.
    await sample();
    const again = (await stats()).series;
    expect(sum(again.uploadsStored)).toBe(2);
    expect(sum(again.downloads)).toBe(2);
    expect(sum(again.bytesOut)).toBe(2 * a.length);
  });

  it("adds every instance's counts to the same hour", async () => {
    const before = sum((await stats()).series.downloads);
    // A second instance: its own registry (as another process has), the same database.
    const registry = new Registry();
    const downloads = new Counter({
      name: 'dfs_downloads_total',
      help: 'h',
      labelNames: ['via'],
      registers: [registry],
    });
    const other = new StatsService(
      t.app.services.repos,
      t.app.services.cluster,
      registryCounters(registry),
      Date.now,
    );
    downloads.inc({ via: 'app' }, 5);
    await other.sampleCounters();
    downloads.inc({ via: 'accel' }, 2);
    await Promise.all([other.sampleCounters(), t.app.services.stats.sampleCounters()]);
    expect(sum((await stats()).series.downloads)).toBe(before + 7);
  });

  it('counts replicas and node bytes the same when the scan takes one replica per query', async () => {
    const { repos, cluster, stats: own } = t.app.services;
    await own.sampleGauges();
    const whole = (await stats()).snapshot;
    const sliced = new StatsService(repos, cluster, async () => new Map(), Date.now, 1);
    await sliced.sampleGauges();
    const again = (await stats()).snapshot;
    expect(again.replicas).toEqual(whole.replicas);
    expect(again.replicas.ok).toBe(2);
    expect(again.nodes.map((n) => n.storedBytes)).toEqual(whole.nodes.map((n) => n.storedBytes));
  });

  it('gives hourly points for 24h and 7d, daily sums for 30d, and keeps 90 days', async () => {
    const { repos } = t.app.services;
    const thisHour = Math.floor(Date.now() / HOUR) * HOUR;
    const today = Math.floor(Date.now() / (24 * HOUR)) * 24 * HOUR;
    const yesterday = today - 24 * HOUR;
    await repos.stats.add([
      { metric: 'uploads.failed', bucket: yesterday, value: 3 },
      { metric: 'uploads.failed', bucket: yesterday + 5 * HOUR, value: 4 },
      { metric: 'uploads.failed', bucket: thisHour - 2 * 24 * HOUR, value: 1 },
    ]);
    await repos.stats.set([
      { metric: 'replicas.corrupt', bucket: yesterday + HOUR, value: 9 },
      { metric: 'replicas.corrupt', bucket: yesterday + 7 * HOUR, value: 6 },
      { metric: 'uploads.failed', bucket: thisHour - 91 * 24 * HOUR, value: 100 },
    ]);

    const day = await stats('24h');
    expect(day.times).toHaveLength(24);
    expect(day.times.at(-1)).toBe(new Date(thisHour).toISOString());
    const inDay = [
      [yesterday, 3],
      [yesterday + 5 * HOUR, 4],
    ].filter(([at]) => at! >= thisHour - 23 * HOUR);
    expect(sum(day.series.uploadsFailed)).toBe(inDay.reduce((x, [, v]) => x + v!, 0));

    const week = await stats('7d');
    expect(week.step).toBe('hour');
    expect(week.times).toHaveLength(168);
    expect(sum(week.series.uploadsFailed)).toBe(8);

    const month = await stats('30d');
    expect(month.step).toBe('day');
    expect(month.times).toHaveLength(30);
    expect(month.times.at(-2)).toBe(new Date(yesterday).toISOString());
    expect(month.series.uploadsFailed.at(-2)).toBe(7);
    // A gauge's day is its last sample of the day.
    expect(month.series.replicasCorrupt.at(-2)).toBe(6);
    expect(sum(month.series.uploadsFailed)).toBe(8);

    // Sampling drops what is older than the retention.
    expect((await repos.stats.since(0)).some((p) => p.value === 100)).toBe(true);
    await sample();
    expect((await repos.stats.since(0)).some((p) => p.value === 100)).toBe(false);
  });

  it('refuses a bad range with 400, and everyone but admins with 403', async () => {
    const bad = await t.app.inject({ url: '/api/admin/stats?range=1y', headers: admin });
    expect(bad.statusCode).toBe(400);
    expect(errorCode(bad)).toBe('bad_request');
    const read = await t.app.inject({ url: '/api/admin/stats', headers: user });
    expect(read.statusCode).toBe(403);
    expect(errorCode(read)).toBe('forbidden');
    const now = await t.app.inject({ method: 'POST', url: '/api/admin/stats/sample', headers: user });
    expect(now.statusCode).toBe(403);
    const anonymous = await t.app.inject({ url: '/api/admin/stats' });
    expect(anonymous.statusCode).toBe(401);
  });
});
