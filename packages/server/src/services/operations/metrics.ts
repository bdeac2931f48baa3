import { Counter, collectDefaultMetrics, Gauge, Histogram, type Metric, Registry } from 'prom-client';

/** One storage node as the heartbeat last saw it. */
export interface NodeSample {
  node: string;
  up: boolean;
  /** The last successful heartbeat's round trip; null before one. */
  latencyMs: number | null;
  usedBytes: number | null;
  freeBytes: number | null;
}

/** Where the gauges read at scrape time come from; each is optional so a part can be left out. */
export interface MetricSources {
  nodes?: () => NodeSample[];
  /** Connections of the primary database's pool (knex's tarn pool). */
  pool?: () => { used: number; free: number; pending: number };
  /** Seconds the read replica is behind; null while it is unusable or not yet polled. */
  replicaLagSeconds?: () => number | null;
  /** Database reads: cached for `dbCacheMs` so a scrape of a large installation stays cheap. */
  replicaStates?: () => Promise<{ ok: number; missing: number; corrupt: number }>;
  /** Logical bytes of every file (all users) and bytes of the distinct contents stored for them. */
  storedBytes?: () => Promise<{ logical: number; physical: number }>;
  /** Running user jobs (large restores and the like) by kind. */
  queuedJobs?: () => Promise<Map<string, number>>;
}

export interface MetricsOptions {
  /** A read replica is configured: `dfs_db_replica_lag_seconds` is exposed. */
  readReplica?: boolean;
  /** How long database-derived gauges are reused between scrapes. */
  dbCacheMs?: number;
  now?: () => number;
}

/** Unknown routes (404s, scanners) share one label value so their URLs cannot grow the series. */
export const UNMATCHED_ROUTE = 'unmatched';

interface DbSnapshot {
  replicas: { ok: number; missing: number; corrupt: number } | null;
  stored: { logical: number; physical: number } | null;
  queued: Map<string, number> | null;
}

/**
 * Node's process metrics (heap, event-loop lag, GC, CPU) are per process, and collecting them
 * starts observers that are never stopped; so they are collected once and registered into every
 * app's registry (tests build many apps in one process).
 */
let processMetrics: Metric[] | null = null;

/**
 * Gauges that prom-client names like counters (promtool's lint refuses `_total` on a gauge);
 * `nodejs_active_handles` and its siblings carry the same numbers by type.
 */
const MISNAMED_DEFAULTS = new Set([
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
]);
function sharedProcessMetrics(): Metric[] {
  if (!processMetrics) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    // The registry holds the metric objects themselves; its typing only shows their common shape.
    processMetrics = (registry.getMetricsAsArray() as unknown as Metric[]).filter(
      (metric) => !MISNAMED_DEFAULTS.has((metric as unknown as { name: string }).name),
    );
  }
  return processMetrics;
}

/**
 * The app's Prometheus metrics, in a registry of its own. Hot paths only increment counters;
 * gauges that describe state (nodes, replicas, queues, pool) are read when Prometheus scrapes.
 */
export class Metrics {
  readonly registry = new Registry();
  private sources: MetricSources = {};
  private readonly now: () => number;
  private readonly dbCacheMs: number;
  private db: { at: number; snapshot: DbSnapshot } | null = null;
  private dbReading: Promise<DbSnapshot> | null = null;

  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  readonly bytesReceived: Counter;
  readonly bytesSent: Counter;
  readonly uploadsStarted: Counter;
  readonly uploadsCompleted: Counter<'kind'>;
  readonly uploadsFailed: Counter<'reason'>;
  readonly downloads: Counter<'via'>;
  readonly nodeDown: Counter<'node'>;
  readonly repairObjects: Counter;
  readonly repairBytes: Counter;
  readonly repairRuns: Counter;
  readonly repairLastRun: Gauge;
  readonly scrubObjects: Counter;
  readonly scrubBytes: Counter;
  readonly scrubProblems: Counter;
  readonly scrubRuns: Counter;
  readonly scrubLastRun: Gauge;

  constructor(options: MetricsOptions = {}) {
    this.now = options.now ?? Date.now;
    this.dbCacheMs = options.dbCacheMs ?? 30_000;
    const registers = [this.registry];
    for (const metric of sharedProcessMetrics()) this.registry.registerMetric(metric);

    this.httpRequests = new Counter({
      name: 'dfs_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'dfs_http_request_duration_seconds',
      help: 'Time from a request arriving to its response being sent, by method and route pattern.',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.bytesReceived = new Counter({
      name: 'dfs_bytes_received_total',
      help: 'File bytes received in upload bodies (every protocol), counted as they arrive.',
      registers,
    });
    this.bytesSent = new Counter({
      name: 'dfs_bytes_sent_total',
      help: 'File bytes the app streamed in downloads (not those nginx or S3 sent for it).',
      registers,
    });
    this.uploadsStarted = new Counter({
      name: 'dfs_uploads_started_total',
      help: 'Uploads begun: upload sessions created and single-request uploads received.',
      registers,
    });
    this.uploadsCompleted = new Counter({
      name: 'dfs_uploads_completed_total',
      help: 'Uploads that became files: kind="stored" wrote new bytes, kind="instant" matched stored content.',
      labelNames: ['kind'],
      registers,
    });
    this.uploadsFailed = new Counter({
      name: 'dfs_uploads_failed_total',
      help: 'Uploads that ended without a file: expired, aborted by the client, or failed verification.',
      labelNames: ['reason'],
      registers,
    });
    this.downloads = new Counter({
      name: 'dfs_downloads_total',
      help: 'File downloads begun, by who sends the bytes: the app, nginx (accel) or a presigned redirect.',
      labelNames: ['via'],
      registers,
    });
    this.nodeDown = new Counter({
      name: 'dfs_node_down_transitions_total',
      help: 'Times a storage node went from up to down, as this instance saw it.',
      labelNames: ['node'],
      registers,
    });
    this.repairRuns = new Counter({
      name: 'dfs_repair_runs_total',
      help: 'Repair runs finished.',
      registers,
    });
    this.repairObjects = new Counter({
      name: 'dfs_repair_objects_total',
      help: 'Copies the repair job made (missing, corrupt, short or draining replicas).',
      registers,
    });
    this.repairBytes = new Counter({
      name: 'dfs_repair_bytes_total',
      help: 'Bytes the repair job copied.',
      registers,
    });
    this.repairLastRun = new Gauge({
      name: 'dfs_repair_last_run_timestamp_seconds',
      help: 'When this instance last finished a repair run (Unix time); 0 before one.',
      registers,
    });
    this.scrubRuns = new Counter({ name: 'dfs_scrub_runs_total', help: 'Scrub runs finished.', registers });
    this.scrubObjects = new Counter({
      name: 'dfs_scrub_objects_total',
      help: 'Replicas the scrub job re-hashed.',
      registers,
    });
    this.scrubBytes = new Counter({
      name: 'dfs_scrub_bytes_total',
      help: 'Bytes the scrub job re-hashed.',
      registers,
    });
    this.scrubProblems = new Counter({
      name: 'dfs_scrub_problems_total',
      help: 'Replicas the scrub job found missing or corrupt.',
      registers,
    });
    this.scrubLastRun = new Gauge({
      name: 'dfs_scrub_last_run_timestamp_seconds',
      help: 'When this instance last finished a scrub run (Unix time); 0 before one.',
      registers,
    });

    const self = this;
    const nodeGauge = (name: string, help: string, value: (sample: NodeSample) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ['node'],
        registers,
        collect() {
          this.reset();
          for (const sample of self.sources.nodes?.() ?? []) {
            const v = value(sample);
            if (v !== null) this.set({ node: sample.node }, v);
          }
        },
      });
    nodeGauge('dfs_node_up', 'Whether a storage node answers its heartbeat (1) or is down (0).', (s) =>
      s.up ? 1 : 0,
    );
    nodeGauge(
      'dfs_node_latency_seconds',
      "The last successful heartbeat's round trip to a storage node (ping and usage).",
      (s) => (s.latencyMs === null ? null : s.latencyMs / 1000),
    );
    nodeGauge('dfs_node_used_bytes', 'Bytes used on a storage node, as it reports them.', (s) => s.usedBytes);
    nodeGauge('dfs_node_free_bytes', 'Bytes free on a storage node, as it reports them.', (s) => s.freeBytes);

    new Gauge({
      name: 'dfs_replicas',
      help: 'Replicas recorded in the database, by state (ok, missing, corrupt).',
      labelNames: ['state'],
      registers,
      async collect() {
        const replicas = (await self.dbSnapshot()).replicas;
        if (!replicas) return;
        for (const state of ['ok', 'missing', 'corrupt'] as const) this.set({ state }, replicas[state]);
      },
    });
    new Gauge({
      name: 'dfs_dedupe_saved_bytes',
      help: 'Bytes deduplication saves: logical bytes of all files minus bytes of the contents stored once.',
      registers,
      async collect() {
        const stored = (await self.dbSnapshot()).stored;
        if (stored) this.set(Math.max(0, stored.logical - stored.physical));
      },
    });
    new Gauge({
      name: 'dfs_jobs_queue_depth',
      help: 'Jobs users started that are still running (large restores), by kind.',
      labelNames: ['job'],
      registers,
      async collect() {
        const queued = (await self.dbSnapshot()).queued;
        this.reset();
        for (const [job, count] of queued ?? []) this.set({ job }, count);
      },
    });
    new Gauge({
      name: 'dfs_db_pool_connections',
      help: "Connections in the primary database's pool: used, free, and acquisitions waiting (pending).",
      labelNames: ['state'],
      registers,
      collect() {
        const pool = self.sources.pool?.();
        if (!pool) return;
        this.set({ state: 'used' }, pool.used);
        this.set({ state: 'free' }, pool.free);
        this.set({ state: 'pending' }, pool.pending);
      },
    });
    if (options.readReplica) {
      new Gauge({
        name: 'dfs_db_replica_lag_seconds',
        help: 'How far the read replica is behind the primary, as of its last poll (+Inf while unusable).',
        registers,
        collect() {
          this.set(self.sources.replicaLagSeconds?.() ?? Number.POSITIVE_INFINITY);
        },
      });
    }
  }

  /** Wires the scrape-time gauges to the services they describe (they exist after the metrics). */
  attach(sources: MetricSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  /** The registry's text exposition and its content type. */
  async expose(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  /** The sum of a metric's values over all its labels (0 for an unknown metric): for the app's own charts. */
  total(name: string): Promise<number> {
    return sumMetric(this.registry, name);
  }

  observeRequest(method: string, route: string | undefined, status: number, seconds: number): void {
    const pattern = route ?? UNMATCHED_ROUTE;
    this.httpRequests.inc({ method, route: pattern, status: String(status) });
    this.httpDuration.observe({ method, route: pattern }, seconds);
  }

  /** One copy made, counted at once so a long run shows its progress. */
  repairCopied(bytes: number): void {
    this.repairObjects.inc();
    if (bytes > 0) this.repairBytes.inc(bytes);
  }

  repairFinished(): void {
    this.repairRuns.inc();
    this.repairLastRun.set(this.now() / 1000);
  }

  scrubDone(objects: number, bytes: number, problems: number): void {
    this.scrubRuns.inc();
    if (objects > 0) this.scrubObjects.inc(objects);
    if (bytes > 0) this.scrubBytes.inc(bytes);
    if (problems > 0) this.scrubProblems.inc(problems);
    this.scrubLastRun.set(this.now() / 1000);
  }

  /** The database-derived values, read at most once per `dbCacheMs` whatever the scrape rate. */
  private dbSnapshot(): Promise<DbSnapshot> {
    if (this.db && this.now() - this.db.at < this.dbCacheMs) return Promise.resolve(this.db.snapshot);
    this.dbReading ??= this.readDb().finally(() => {
      this.dbReading = null;
    });
    return this.dbReading;
  }

  private async readDb(): Promise<DbSnapshot> {
    const at = this.now();
    const { replicaStates, storedBytes, queuedJobs } = this.sources;
    // One failing query leaves its gauge empty rather than failing the whole scrape.
    const [replicas, stored, queued] = await Promise.all([
      replicaStates?.().catch(() => null) ?? null,
      storedBytes?.().catch(() => null) ?? null,
      queuedJobs?.().catch(() => null) ?? null,
    ]);
    const snapshot = { replicas, stored, queued };
    this.db = { at, snapshot };
    return snapshot;
  }
}

/**
 * The sum of a metric's values over its labels, or over those `where` keeps; 0 for a metric the
 * registry does not have.
 */
export async function sumMetric(
  registry: Registry,
  name: string,
  where?: (labels: Partial<Record<string, string | number>>) => boolean,
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  let sum = 0;
  for (const value of (await metric.get()).values) if (!where || where(value.labels)) sum += value.value;
  return sum;
}
