import type { StatsRange, StatsResponse, StatsSeries, StatsSnapshotNode } from '@dfs/shared';
import type { Registry } from 'prom-client';
import type { Job } from '../../jobs/runner.ts';
import type { Repositories } from '../../repositories/index.ts';
import type { StatsPoint } from '../../repositories/stats.ts';
import type { StorageCluster } from '../cluster.ts';
import { sumMetric } from './metrics.ts';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
/** How long hourly points are kept: the dashboard's longest range, with room to spare. */
export const STATS_RETENTION_MS = 90 * DAY;

/** A counter of the app's Prometheus registry, added up over the label values `where` keeps. */
interface CounterSpec {
  metric: string;
  where?: (labels: Partial<Record<string, string | number>>) => boolean;
}

/** The counters the dashboard keeps per hour, by their name in `stats_series`. */
export const STATS_COUNTERS = {
  'uploads.stored': { metric: 'dfs_uploads_completed_total', where: (l) => l.kind === 'stored' },
  'uploads.instant': { metric: 'dfs_uploads_completed_total', where: (l) => l.kind === 'instant' },
  'uploads.failed': { metric: 'dfs_uploads_failed_total' },
  downloads: { metric: 'dfs_downloads_total' },
  'bytes.in': { metric: 'dfs_bytes_received_total' },
  'bytes.out': { metric: 'dfs_bytes_sent_total' },
  'http.5xx': { metric: 'dfs_http_requests_total', where: (l) => String(l.status).startsWith('5') },
} satisfies Record<string, CounterSpec>;
type CounterKey = keyof typeof STATS_COUNTERS;

/** This instance's counter totals since it started, by `stats_series` name. */
export type CounterReader = () => Promise<Map<string, number>>;

/** Reads the dashboard's counters from a prom-client registry (the app's `/metrics` one). */
export function registryCounters(registry: Registry): CounterReader {
  return async () => {
    const out = new Map<string, number>();
    for (const [key, spec] of Object.entries(STATS_COUNTERS) as Array<[CounterKey, CounterSpec]>) {
      if (registry.getSingleMetric(spec.metric))
        out.set(key, await sumMetric(registry, spec.metric, spec.where));
    }
    return out;
  };
}

const GAUGES = {
  logical: 'bytes.logical',
  unique: 'bytes.unique',
  ok: 'replicas.ok',
  missing: 'replicas.missing',
  corrupt: 'replicas.corrupt',
  activeHour: 'users.active.hour',
  activeDay: 'users.active.day',
  sampledAt: 'sample.at',
} as const;
const NODE_STORED = 'node.stored:';
const NODE_USED = 'node.used:';

/** Replicas counted per query: a few tens of milliseconds each on SQLite (docs/OPERATIONS.md). */
export const REPLICA_SLICE = 20_000;

const hourOf = (ms: number) => Math.floor(ms / HOUR) * HOUR;

/**
 * The dashboard's time series, kept in the database so it works without Prometheus and survives
 * restarts. Counters: each instance adds what its registry counted since its previous sample to
 * the current hour, so several instances add up. Gauges (storage, replicas, dedupe, active users)
 * are read from the database by one instance at a time and keep the hour's latest value.
 */
export class StatsService {
  /** Counter totals already added to the series, per name: the next sample adds what is beyond. */
  private readonly added = new Map<string, number>();
  /** Samples of this instance's counters run one at a time, or two could add the same delta. */
  private sampling: Promise<void> = Promise.resolve();
  /** A gauge scan under way on this instance: a second request for one waits for it instead. */
  private gauging: Promise<void> | null = null;

  constructor(
    private readonly repos: Repositories,
    private readonly cluster: StorageCluster,
    private readonly counters: CounterReader,
    private readonly now: () => number,
    /** Replicas per query of the gauge scan (tests take tiny slices to cross their edges). */
    private readonly replicaSlice = REPLICA_SLICE,
  ) {}

  /** Adds what this instance counted since its last sample to the current hour. */
  sampleCounters(): Promise<void> {
    const next = this.sampling.then(() => this.addCounterDeltas());
    this.sampling = next.catch(() => undefined);
    return next;
  }

  private async addCounterDeltas(): Promise<void> {
    const totals = await this.counters();
    const bucket = hourOf(this.now());
    const points: StatsPoint[] = [];
    for (const [metric, total] of totals) {
      const before = this.added.get(metric) ?? 0;
      // A counter below what was added was reset (a new registry): all of it is new.
      const delta = Math.round(total >= before ? total - before : total);
      if (delta > 0) points.push({ metric, bucket, value: delta });
    }
    await this.repos.stats.add(points);
    // Only once stored: a failed write leaves the deltas for the next sample.
    for (const [metric, total] of totals) this.added.set(metric, total);
  }

  /** Records the gauges for the current hour and drops hours past retention. */
  sampleGauges(): Promise<void> {
    this.gauging ??= this.recordGauges().finally(() => {
      this.gauging = null;
    });
    return this.gauging;
  }

  private async recordGauges(): Promise<void> {
    const now = this.now();
    const bucket = hourOf(now);
    // Sequential: on SQLite they share one connection anyway, and a scan at a time is gentler.
    const nodes = await this.repos.nodes.list();
    const totals = await this.repos.stats.totals();
    const activeHour = await this.repos.stats.activeUsers(now - HOUR);
    const activeDay = await this.repos.stats.activeUsers(now - DAY);
    const { byState: replicas, okBytesByNode: storedByNode } = await this.repos.stats.replicaTotals(
      this.replicaSlice,
    );
    const points: StatsPoint[] = [
      { metric: GAUGES.logical, bucket, value: totals.logicalBytes },
      { metric: GAUGES.unique, bucket, value: totals.uniqueBytes },
      { metric: GAUGES.ok, bucket, value: replicas.ok },
      { metric: GAUGES.missing, bucket, value: replicas.missing },
      { metric: GAUGES.corrupt, bucket, value: replicas.corrupt },
      { metric: GAUGES.activeHour, bucket, value: activeHour },
      { metric: GAUGES.activeDay, bucket, value: activeDay },
      { metric: GAUGES.sampledAt, bucket, value: now },
    ];
    for (const node of nodes) {
      points.push({ metric: NODE_STORED + node.id, bucket, value: storedByNode.get(node.id) ?? 0 });
      if (node.used_bytes !== null) {
        points.push({ metric: NODE_USED + node.id, bucket, value: Number(node.used_bytes) });
      }
    }
    await this.repos.stats.set(points);
    await this.repos.stats.deleteBefore(bucket - STATS_RETENTION_MS);
  }

  /** Both samples now (an admin's "refresh"; the jobs do it on their own otherwise). */
  async sampleNow(): Promise<void> {
    await this.sampleCounters();
    await this.sampleGauges();
  }

  /** Every minute on every instance: each adds its own counts. */
  countersJob(): Job {
    return { name: 'stats-counters', everyMs: 60_000, everyInstance: true, run: () => this.sampleCounters() };
  }

  /**
   * Gauges scan the replica and content tables (seconds of database work, in slices, at a million
   * files), so one instance takes them every fifteen minutes: plenty for hourly points, and an
   * admin can sample at once from the dashboard.
   */
  gaugesJob(): Job {
    return {
      name: 'stats-gauges',
      everyMs: 15 * 60_000,
      firstRunAfterMs: 60_000,
      run: () => this.sampleGauges(),
    };
  }

  async read(range: StatsRange): Promise<StatsResponse> {
    const now = this.now();
    const step = range === '30d' ? DAY : HOUR;
    const count = range === '24h' ? 24 : range === '7d' ? 7 * 24 : 30;
    const first = Math.floor(now / step) * step - (count - 1) * step;
    const times = Array.from({ length: count }, (_, i) => first + i * step);
    const rows = await this.repos.stats.since(first);

    const sums = new Map<string, number[]>();
    const levels = new Map<string, Array<number | null>>();
    for (const row of rows) {
      const at = Math.floor((row.bucket - first) / step);
      if (at < 0 || at >= count) continue;
      if (row.metric in STATS_COUNTERS) {
        const values = sums.get(row.metric) ?? new Array<number>(count).fill(0);
        values[at] = (values[at] ?? 0) + row.value;
        sums.set(row.metric, values);
      } else {
        // Rows come oldest first, so a day keeps its last hour's value.
        const values = levels.get(row.metric) ?? new Array<number | null>(count).fill(null);
        values[at] = row.value;
        levels.set(row.metric, values);
      }
    }
    const counts = (metric: CounterKey) => sums.get(metric) ?? new Array<number>(count).fill(0);
    const level = (metric: string) => levels.get(metric) ?? new Array<number | null>(count).fill(null);

    const nodeRows = await this.repos.nodes.list();
    const names = new Map(nodeRows.map((n) => [n.id, n.name]));
    const seriesNodeIds = new Set<string>();
    for (const metric of levels.keys()) {
      if (metric.startsWith(NODE_STORED)) seriesNodeIds.add(metric.slice(NODE_STORED.length));
      else if (metric.startsWith(NODE_USED)) seriesNodeIds.add(metric.slice(NODE_USED.length));
    }
    const series: StatsSeries = {
      uploadsStored: counts('uploads.stored'),
      uploadsInstant: counts('uploads.instant'),
      uploadsFailed: counts('uploads.failed'),
      downloads: counts('downloads'),
      bytesIn: counts('bytes.in'),
      bytesOut: counts('bytes.out'),
      errors5xx: counts('http.5xx'),
      logicalBytes: level(GAUGES.logical),
      uniqueBytes: level(GAUGES.unique),
      replicasOk: level(GAUGES.ok),
      replicasMissing: level(GAUGES.missing),
      replicasCorrupt: level(GAUGES.corrupt),
      activeUsersHour: level(GAUGES.activeHour),
      activeUsersDay: level(GAUGES.activeDay),
      nodes: [...seriesNodeIds]
        .map((id) => ({
          id,
          name: names.get(id) ?? id,
          storedBytes: level(NODE_STORED + id),
          usedBytes: level(NODE_USED + id),
        }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    };

    // The snapshot: nodes as their heartbeats left them, the scanned figures from the last sample.
    const latest = await this.repos.stats.latest([
      ...Object.values(GAUGES),
      ...nodeRows.map((n) => NODE_STORED + n.id),
    ]);
    const last = (metric: string) => latest.get(metric)?.value ?? 0;
    const nodes: StatsSnapshotNode[] = nodeRows.map((row) => {
      const member = this.cluster.memberState(row.id);
      const up = member?.up === true;
      const num = (v: number | null) => (v === null ? null : Number(v));
      return {
        id: row.id,
        name: row.name,
        status: up ? (member.draining ? 'draining' : 'up') : 'down',
        storedBytes: latest.get(NODE_STORED + row.id)?.value ?? null,
        usedBytes: num(row.used_bytes),
        freeBytes: num(row.free_bytes),
        totalBytes: num(row.total_bytes),
      };
    });
    const sampledAt = latest.get(GAUGES.sampledAt)?.value;
    return {
      range,
      step: step === DAY ? 'day' : 'hour',
      times: times.map((t) => new Date(t).toISOString()),
      series,
      snapshot: {
        at: new Date(now).toISOString(),
        lastSampleAt: sampledAt === undefined ? null : new Date(sampledAt).toISOString(),
        nodes,
        replicas: { ok: last(GAUGES.ok), missing: last(GAUGES.missing), corrupt: last(GAUGES.corrupt) },
        dedupe: {
          logicalBytes: last(GAUGES.logical),
          uniqueBytes: last(GAUGES.unique),
          savedBytes: Math.max(0, last(GAUGES.logical) - last(GAUGES.unique)),
        },
        // Cheap to count live (sessions and app passwords seen recently).
        activeUsers: {
          hour: await this.repos.stats.activeUsers(now - HOUR),
          day: await this.repos.stats.activeUsers(now - DAY),
        },
      },
    };
  }
}
