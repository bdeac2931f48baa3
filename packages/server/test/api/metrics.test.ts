import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '@dfs/cluster/app-process';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repair } from '../../src/jobs/repair.ts';
import { scrub } from '../../src/jobs/scrub.ts';
import { registerErrorHandling } from '../../src/plugins/errors.ts';
import { registerMetrics } from '../../src/plugins/metrics.ts';
import { Metrics } from '../../src/services/operations/metrics.ts';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

const TOKEN = 'metrics-token-0123456789abcdef';
const DASHBOARD = new URL('../../../../deploy/grafana/dfs-dashboard.json', import.meta.url);

let t: TestApp;
let metricsPort: number;
let prometheus: RunningPrometheus | undefined;
/**
 * Prometheus applies discovered targets every 5 s; started as soon as the first test has read the
 * database-derived gauges (a scrape before would cache them for 30 s), it waits while the others run.
 */
const ensurePrometheus = async (): Promise<RunningPrometheus> => {
  prometheus ??= await startPrometheus(metricsPort);
  return prometheus;
};
let nodesDir: string;
const scrape = async (): Promise<string> => {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
};

/** The value of one sample line (`name{labels} value`), or undefined when there is none. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

beforeAll(async () => {
  metricsPort = await freePort();
  nodesDir = await mkdtemp(path.join(os.tmpdir(), 'dfs-metrics-nodes-'));
  t = await startTestApp({
    DFS_NODES: `local://${path.join(nodesDir, 'a')},local://${path.join(nodesDir, 'b')}`,
    DFS_REPLICAS: '2',
    DFS_CHUNK_SIZE: String(CHUNK),
    DFS_HOST: '127.0.0.1',
    DFS_METRICS_TOKEN: TOKEN,
    DFS_METRICS_PORT: String(metricsPort),
  });
  await t.app.listenMetrics();
});
afterAll(async () => {
  await stopPrometheus(prometheus);
  await t?.close();
  if (nodesDir) await rm(nodesDir, { recursive: true, force: true });
});

describe('/metrics', () => {
  it('counts real traffic: sign-in, uploads (stored and instant), a download and a 404', async () => {
    const metrics = t.app.services.metrics;
    const before = {
      started: await metrics.total('dfs_uploads_started_total'),
      received: await metrics.total('dfs_bytes_received_total'),
      sent: await metrics.total('dfs_bytes_sent_total'),
      downloads: await metrics.total('dfs_downloads_total'),
    };
    const alice = await t.user('alice');
    const data = random(CHUNK * 2 + 100);
    const up = uploader(t, alice.headers);
    const file = await up.upload(data, 'a.bin');
    // The same bytes again: the server already holds them, so the upload is instant.
    expect((await up.upload(data, 'b.bin')).instant).toBe(true);
    const download = await t.app.inject({ url: `/api/files/${file.id}/content`, headers: alice.headers });
    expect(download.rawPayload.equals(data)).toBe(true);
    const secret = 'no-such-thing-4f2a';
    expect((await t.app.inject({ url: `/api/${secret}/x` })).statusCode).toBe(404);

    const text = await scrape();
    expect(sample(text, 'dfs_http_requests_total{method="POST",route="/api/auth/signin",status="200"}')).toBe(
      1,
    );
    expect(sample(text, 'dfs_http_requests_total{method="GET",route="unmatched",status="404"}')).toBe(1);
    expect(
      sample(text, 'dfs_http_request_duration_seconds_count{method="GET",route="/api/files/:id/content"}'),
    ).toBe(1);
    // Route patterns only: the URL of the 404 (or a file id) never becomes a label.
    expect(text).not.toContain(secret);
    expect(text).not.toContain(file.id);
    expect(sample(text, 'dfs_uploads_started_total')).toBe(before.started + 2);
    expect(sample(text, 'dfs_uploads_completed_total{kind="stored"}')).toBe(1);
    expect(sample(text, 'dfs_uploads_completed_total{kind="instant"}')).toBe(1);
    expect(sample(text, 'dfs_bytes_received_total')).toBe(before.received + data.length);
    expect(sample(text, 'dfs_downloads_total{via="app"}')).toBe(before.downloads + 1);
    expect(sample(text, 'dfs_bytes_sent_total')).toBe(before.sent + data.length);
    // Two files, one content: deduplication saved one copy.
    expect(sample(text, 'dfs_dedupe_saved_bytes')).toBe(data.length);
    expect(sample(text, 'dfs_replicas{state="ok"}')).toBe(2);
    for (const { node } of t.app.services.cluster.nodeSamples()) {
      expect(sample(text, `dfs_node_up{node="${node}"}`)).toBe(1);
      expect(sample(text, `dfs_node_free_bytes{node="${node}"}`)).toBeGreaterThan(0);
      expect(sample(text, `dfs_node_latency_seconds{node="${node}"}`)).toBeGreaterThan(0);
    }
    expect(sample(text, 'dfs_db_pool_connections{state="used"}')).toBeGreaterThanOrEqual(0);
    // Node's own process metrics, under prom-client's standard names.
    expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
    await ensurePrometheus();
  });

  it('counts failed uploads, repair and scrub progress, and a node going down', async () => {
    const metrics = t.app.services.metrics;
    const { db } = t.app.services;
    const carol = await t.user('carol');
    const api = uploader(t, carol.headers);
    const data = random(1000);
    const open = async () => {
      const res = await api.create({ name: 'x.bin', size: data.length });
      expect(res.statusCode).toBe(201);
      return (res.json() as { uploadId: string }).uploadId;
    };
    // Aborted by the client.
    expect((await api.abort(await open())).statusCode).toBe(204);
    // Bytes that do not hash to the declared sha1.
    const bad = await api.create({ name: 'bad.bin', size: data.length, sha1: 'a'.repeat(40) });
    const badId = (bad.json() as { uploadId: string }).uploadId;
    expect((await api.put(badId, 0, data)).statusCode).toBe(204);
    expect(errorCode(await api.complete(badId))).toBe('hash_mismatch');
    // Expired, and removed by the sweep.
    const stale = await open();
    await db('uploads').where({ id: stale }).update({ expires_at: 1 });
    await t.app.services.maintenance.sweep.run();
    const failed = async (reason: string) =>
      sample(
        await metrics.registry.getSingleMetricAsString('dfs_uploads_failed_total'),
        `dfs_uploads_failed_total{reason="${reason}"}`,
      );
    expect(await failed('aborted')).toBe(1);
    expect(await failed('verification')).toBe(1);
    expect(await failed('expired')).toBe(1);

    // The scrub re-hashes every replica once none counts as recently verified.
    const deps = t.app.services.clusterJobs.deps;
    await db('replicas').update({ verified_at: 0 });
    const held = (await db('replicas')
      .join('contents', 'contents.id', 'replicas.content_id')
      .count({ n: '*' })
      .sum({ bytes: 'contents.size' })
      .first()) as { n: number | string; bytes: number | string };
    const scrubbed = await scrub(deps, { bytesPerSecond: 1e12 });
    expect(scrubbed.checked).toBe(Number(held.n));
    expect(await metrics.total('dfs_scrub_objects_total')).toBe(Number(held.n));
    expect(await metrics.total('dfs_scrub_bytes_total')).toBe(Number(held.bytes));
    expect(await metrics.total('dfs_scrub_runs_total')).toBe(1);
    expect(await metrics.total('dfs_scrub_last_run_timestamp_seconds')).toBeGreaterThan(
      Date.now() / 1000 - 60,
    );

    // A lost replica row: the repair copies the content to that node again.
    const [nodeA, nodeB] = (await t.app.services.repos.nodes.list()).sort((a, b) =>
      a.name.localeCompare(b.name),
    );
    const lost = (await db('replicas')
      .join('contents', 'contents.id', 'replicas.content_id')
      .where({ node_id: nodeB!.id })
      .first('replicas.content_id as id', 'contents.size as size')) as { id: string; size: number };
    await db('replicas').where({ node_id: nodeB!.id, content_id: lost.id }).delete();
    expect((await repair(deps)).copied).toBe(1);
    expect(await metrics.total('dfs_repair_objects_total')).toBe(1);
    expect(await metrics.total('dfs_repair_bytes_total')).toBe(Number(lost.size));
    expect(await metrics.total('dfs_repair_runs_total')).toBe(1);

    // A node whose directory is replaced by a file goes down after missed heartbeats, and is
    // back after one once the directory returns.
    const dirB = path.join(nodesDir, 'b');
    await rm(dirB, { recursive: true, force: true });
    await writeFile(dirB, '');
    try {
      // A beat already under way (the timer's) may have started before the directory went.
      for (let i = 0; i < 4 && t.app.services.cluster.isUp(nodeB!.id); i++)
        await t.app.services.cluster.heartbeat();
      const text = await scrape();
      expect(sample(text, `dfs_node_up{node="${nodeB!.name}"}`)).toBe(0);
      expect(sample(text, `dfs_node_up{node="${nodeA!.name}"}`)).toBe(1);
      expect(sample(text, `dfs_node_down_transitions_total{node="${nodeB!.name}"}`)).toBe(1);
    } finally {
      await rm(dirB, { force: true });
      await mkdir(dirB, { recursive: true });
      await t.app.services.cluster.heartbeat();
    }
    expect(sample(await scrape(), `dfs_node_up{node="${nodeB!.name}"}`)).toBe(1);
  });

  it('reads the database-derived gauges at most once per 30 s, however often it is scraped', async () => {
    let clock = 1_000_000;
    let reads = 0;
    const metrics = new Metrics({ now: () => clock });
    metrics.attach({
      storedBytes: async () => {
        reads++;
        return { logical: 300, physical: 100 };
      },
    });
    const saved = async () => sample(await metrics.registry.metrics(), 'dfs_dedupe_saved_bytes');
    // Two scrapes at once share one read.
    expect(await Promise.all([saved(), saved()])).toEqual([200, 200]);
    clock += 29_000;
    expect(await saved()).toBe(200);
    expect(reads).toBe(1);
    clock += 1_000;
    expect(await saved()).toBe(200);
    expect(reads).toBe(2);
  });

  it('passes promtool check metrics without a lint warning', async () => {
    const text = await scrape();
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk));
      child.on('error', reject);
      child.on('close', (exitCode) => resolve({ code: exitCode, output }));
      child.stdin.end(text);
    });
    expect(output).toBe('');
    expect(code).toBe(0);
  });

  it('demands the bearer token on the main listener: 401 without it or with a wrong one', async () => {
    const none = await t.app.inject({ url: '/metrics' });
    expect(none.statusCode).toBe(401);
    expect(errorCode(none)).toBe('unauthorized');
    expect(none.headers['www-authenticate']).toBe('Bearer realm="metrics"');
    const wrong = await t.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}x` } });
    expect(wrong.statusCode).toBe(401);
    expect(errorCode(wrong)).toBe('unauthorized');
    const right = await t.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(right.statusCode).toBe(200);
    expect(right.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(right.body).toContain('# TYPE dfs_http_requests_total counter');
  });

  it('serves the metrics port without a token, and only /metrics there', async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const other = await fetch(`http://127.0.0.1:${metricsPort}/api/auth/me`);
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });

  it('answers 404 on the main listener when no token is configured', async () => {
    const bare = Fastify();
    registerErrorHandling(bare);
    await registerMetrics(bare, new Metrics(), { metricsToken: null, metricsPort: null, host: '127.0.0.1' });
    try {
      const res = await bare.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.statusCode).toBe(404);
      expect(errorCode(res)).toBe('not_found');
    } finally {
      await bare.close();
    }
  });

  it('has a Grafana dashboard whose every query names metrics /metrics exposes', async () => {
    const exposed = new Set<string>();
    const declare = (text: string) => {
      for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
        exposed.add(name!);
        if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exposed.add(name! + s);
        if (type === 'summary') for (const s of ['_sum', '_count']) exposed.add(name! + s);
      }
    };
    declare(await scrape());
    // The replica lag exists only with a read replica configured; the dashboard may chart it.
    declare(
      await new Metrics({ readReplica: true }).registry.getSingleMetricAsString('dfs_db_replica_lag_seconds'),
    );

    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as {
      panels: Array<{ title: string; targets?: Array<{ expr: string }>; panels?: unknown[] }>;
    };
    const exprs = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
    expect(exprs.length).toBeGreaterThan(10);
    for (const expr of exprs) {
      const names = [...expr.matchAll(/\b(?:dfs|process|nodejs)_[a-z0-9_]+/g)].map((m) => m[0]);
      expect(names, expr).not.toEqual([]);
      for (const name of names) expect(exposed, `${name} in ${expr}`).toContain(name);
    }
  });
});

describe('a real Prometheus server', () => {
  it('scrapes the metrics port and sees an upload', async () => {
    const { port, process: child, startedAt } = await ensurePrometheus();
    const bob = await t.user('bob');
    await uploader(t, bob.headers).upload(random(1000), 'seen.bin');
    const api = async <T>(query: string): Promise<T | undefined> => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/v1/${query}`);
        return res.ok ? ((await res.json()) as { data: T }).data : undefined;
      } catch {
        return undefined; // not listening yet
      }
    };
    const poll = async <T>(what: () => Promise<T | undefined>): Promise<T> => {
      for (;;) {
        const value = await what();
        if (value !== undefined) return value;
        if (child.exitCode !== null) throw new Error('prometheus exited');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    const target = await poll(async () => {
      const targets = await api<{ activeTargets: Array<{ health: string; lastError: string }> }>('targets');
      const first = targets?.activeTargets[0];
      return first?.health === 'up' ? first : undefined;
    });
    expect(target.lastError).toBe('');
    const uploads = await t.app.services.metrics.total('dfs_uploads_completed_total');
    const stored = await poll(async () => {
      const data = await api<{ result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(
        'query?query=sum(dfs_uploads_completed_total)',
      );
      const value = Number(data?.result[0]?.value[1]);
      return value === uploads ? value : undefined;
    });
    expect(stored).toBeGreaterThanOrEqual(1);
    // Mostly Prometheus's fixed 5 s target-update period; bounded so a slow start shows.
    expect(performance.now() - startedAt).toBeLessThan(15_000);

    // Every query of the Grafana dashboard parses and runs (Grafana's variables filled in).
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as {
      panels: Array<{ targets?: Array<{ expr: string }> }>;
    };
    for (const expr of dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((x) => x.expr))) {
      const query = expr
        .replaceAll('$__rate_interval', '1m')
        .replaceAll('$__range', '5m')
        .replaceAll('$job', '.*');
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(query)}`);
      expect(((await res.json()) as { status: string; error?: string }).status, `${expr}`).toBe('success');
    }
  }, 30_000);
});

interface RunningPrometheus {
  port: number;
  process: ChildProcess;
  dir: string;
  startedAt: number;
}

/** Debian's Prometheus on a free port with a temporary TSDB, scraping the metrics port every second. */
async function startPrometheus(target: number): Promise<RunningPrometheus> {
  const startedAt = performance.now();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-prometheus-'));
  const port = await freePort();
  await writeFile(
    path.join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      'scrape_configs:',
      '  - job_name: dfs',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${target}']`,
      '',
    ].join('\n'),
  );
  const child = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: 'ignore' },
  );
  return { port, process: child, dir, startedAt };
}

async function stopPrometheus(running: RunningPrometheus | undefined): Promise<void> {
  if (!running) return;
  if (running.process.exitCode === null && running.process.signalCode === null) {
    const exited = new Promise((resolve) => running.process.once('exit', resolve));
    running.process.kill('SIGKILL');
    await exited;
  }
  await rm(running.dir, { recursive: true, force: true });
}
