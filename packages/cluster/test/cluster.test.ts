import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterInfo } from '../src/cluster.ts';

const REPO = path.resolve(import.meta.dirname, '../../..');
const MiB = 1024 * 1024;
const CHUNK = 8 * MiB;

const sha1 = (data: Buffer) => createHash('sha1').update(data).digest('hex');
const md5 = (data: Buffer) => createHash('md5').update(data).digest('base64');
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * `pnpm cluster` as a user runs it, driven from outside through nginx: two app instances, a
 * MariaDB primary and replica, three SFTP nodes and a Ceph RGW node, all real programs.
 */
describe('pnpm cluster', () => {
  let dir: string;
  let child: ChildProcess;
  let output = '';
  let info: ClusterInfo;
  let auth: Record<string, string>;

  const call = (method: string, url: string, body?: object | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${info.url}${url}`, {
      method,
      redirect: 'manual',
      headers: {
        ...auth,
        ...(Buffer.isBuffer(body)
          ? { 'content-type': 'application/octet-stream', 'content-md5': md5(body) }
          : body
            ? { 'content-type': 'application/json' }
            : {}),
        ...headers,
      },
      body: Buffer.isBuffer(body) ? new Uint8Array(body) : body ? JSON.stringify(body) : undefined,
    });
  const accessLog = async () =>
    (await readFile(info.nginx.accessLog, 'utf8'))
      .trimEnd()
      .split('\n')
      .map((line) => {
        const [status = '', method = '', uri = '', finalUri = '', ...tried] = line.split(' ');
        // The last upstream tried is the one that answered.
        return { upstream: tried.at(-1) ?? '', status, method, uri, finalUri };
      });
  const appHost = (i: number) => new URL(info.apps[i]!.url).host;
  /** PUT with the retries any client makes when a proxy answers 502 while an instance dies. */
  const putChunk = async (uploadId: string, index: number, bytes: Buffer) => {
    for (let attempt = 0; ; attempt++) {
      const res = await call('PUT', `/api/uploads/${uploadId}/chunks/${index}`, bytes);
      if (res.status === 204 || attempt >= 5 || ![502, 503, 504].includes(res.status)) return res;
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const upload = async (data: Buffer, name: string) => {
    const created = await call('POST', '/api/uploads', { name, size: data.length, sha1: sha1(data) });
    const body = (await created.json()) as { uploadId: string; status: string; file?: { id: string } };
    expect(created.status, JSON.stringify(body)).toBeLessThan(300);
    if (body.file) return body.file;
    for (let i = 0; i * CHUNK < data.length; i++) {
      expect((await putChunk(body.uploadId, i, data.subarray(i * CHUNK, (i + 1) * CHUNK))).status).toBe(204);
    }
    const done = await call('POST', `/api/uploads/${body.uploadId}/complete`);
    expect(done.status).toBe(201);
    return ((await done.json()) as { file: { id: string } }).file;
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-cl-'));
    // Its own process group, so that one signal reaches pnpm and the cluster behind it.
    child = spawn('pnpm', ['cluster'], {
      cwd: REPO,
      detached: true,
      env: { ...process.env, DFS_CLUSTER_DIR: dir, DFS_CLUSTER_PORT: '0', DFS_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d) => (output += d));
    child.stderr?.on('data', (d) => (output += d));
    const file = path.join(dir, 'cluster.json');
    const deadline = Date.now() + 240_000;
    while (!existsSync(file)) {
      if (child.exitCode !== null) throw new Error(`pnpm cluster exited ${child.exitCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`pnpm cluster did not come up:\n${output}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    info = JSON.parse(await readFile(file, 'utf8')) as ClusterInfo;
    const user = { username: 'alice', password: 'correct horse battery' };
    expect((await call('POST', '/api/auth/signup', user)).status).toBe(201);
    const signin = await call('POST', '/api/auth/signin', user);
    auth = { authorization: `Bearer ${((await signin.json()) as { token: string }).token}` };
  }, 300_000);

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null && child.pid) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(-child.pid, 'SIGTERM');
      await exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('describes itself in cluster.json and serves the web app through nginx', async () => {
    expect(output).toContain(`dfs cluster is up`);
    expect(output).toContain(info.url);
    expect(info.apps).toHaveLength(2);
    expect(info.nodes.map((node) => node.name)).toEqual(['sftp1', 'sftp2', 'sftp3', 'rgw']);
    for (const pid of [...info.apps.map((a) => a.pid), info.nginx.pid, ...info.nodes.map((n) => n.pid)]) {
      expect(alive(pid)).toBe(true);
    }
    const page = await fetch(`${info.url}/files`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="app">');
  });

  it('spreads uploads and downloads over both instances through nginx', async () => {
    const files: { id: string; data: Buffer }[] = [];
    for (let i = 0; i < 16; i++) {
      const data = randomBytes(50_000 + i * 1000);
      files.push({ id: (await upload(data, `small-${i}.bin`)).id, data });
    }
    const uploadLines = (await accessLog()).filter((line) => line.uri.startsWith('/api/uploads'));
    expect(new Set(uploadLines.map((line) => line.upstream))).toEqual(new Set([appHost(0), appHost(1)]));
    for (const { id, data } of files.slice(0, 6)) {
      const res = await call('GET', `/api/files/${id}/content`);
      expect(res.status).toBe(200);
      expect(sha1(Buffer.from(await res.arrayBuffer()))).toBe(sha1(data));
    }
    // Downloads too are spread: each instance authorized some of them.
    const downloads = (await accessLog()).filter((line) => /^\/api\/files\/[^/]+\/content$/.test(line.uri));
    expect(new Set(downloads.map((line) => line.upstream))).toEqual(new Set([appHost(0), appHost(1)]));
  });

  it('lets nginx send downloads from the SFTP node directories, with Range', async () => {
    const data = randomBytes(3 * MiB + 17);
    const file = await upload(data, 'ranged.bin');
    const ranged = await call('GET', `/api/files/${file.id}/content`, undefined, {
      range: 'bytes=1048576-1048675',
    });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 1048576-1048675/${data.length}`);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(MiB, MiB + 100))).toBe(true);
    const line = (await accessLog()).filter((l) => l.uri === `/api/files/${file.id}/content`).pop();
    // Two replicas among three SFTP nodes and an S3 node: at least one is on an SFTP node.
    expect(line?.finalUri).toMatch(/^\/_dfs\/sftp[123]\/objects\//);
    expect(line?.status).toBe('206');
  });

  it('reads listings from the replica, and a user’s own writes at once', async () => {
    const made = await call('POST', '/api/folders', { name: `folder-${Date.now()}` });
    expect(made.status).toBe(201);
    const { file: folder } = (await made.json()) as { file: { id: string; name: string } };
    const listing = await call('GET', '/api/files?limit=100');
    const names = ((await listing.json()) as { items: { name: string }[] }).items.map((item) => item.name);
    expect(names).toContain(folder.name);
    let source = '';
    const deadline = Date.now() + 10_000;
    while (source !== 'replica' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      const res = await call('GET', '/api/files?limit=100');
      source = /db;desc="(\w+)"/.exec(res.headers.get('server-timing') ?? '')?.[1] ?? '';
      if (source === 'replica') {
        const items = ((await res.json()) as { items: { name: string }[] }).items;
        expect(items.map((item) => item.name)).toContain(folder.name);
      }
    }
    expect(source).toBe('replica');
  });

  it('finishes an upload through the other instance when the one taking it is SIGKILLed', async () => {
    const data = randomBytes(5 * CHUNK + 12345);
    const created = await call('POST', '/api/uploads', {
      name: 'survivor.bin',
      size: data.length,
      sha1: sha1(data),
    });
    const { uploadId } = (await created.json()) as { uploadId: string };
    const chunk = (i: number) => data.subarray(i * CHUNK, (i + 1) * CHUNK);
    for (const i of [0, 1, 2]) expect((await putChunk(uploadId, i, chunk(i))).status).toBe(204);
    // nginx keeps one upload on one instance while it is up: that is the one to kill.
    const taking = (await accessLog())
      .filter((l) => l.uri.startsWith(`/api/uploads/${uploadId}/chunks/`))
      .pop()!;
    const victim = info.apps.findIndex((app) => new URL(app.url).host === taking.upstream);
    expect(victim).toBeGreaterThanOrEqual(0);
    process.kill(info.apps[victim]!.pid, 'SIGKILL');

    const status = await call('GET', `/api/uploads/${uploadId}`);
    expect(status.status).toBe(200);
    expect(((await status.json()) as { receivedChunks: number[] }).receivedChunks).toEqual([0, 1, 2]);
    for (const i of [3, 4, 5]) expect((await putChunk(uploadId, i, chunk(i))).status).toBe(204);
    const done = await call('POST', `/api/uploads/${uploadId}/complete`);
    expect(done.status).toBe(201);
    const { file } = (await done.json()) as { file: { id: string } };
    const body = await call('GET', `/api/files/${file.id}/content`);
    expect(sha1(Buffer.from(await body.arrayBuffer()))).toBe(sha1(data));
    const survivor = appHost(1 - victim);
    const after = (await accessLog()).filter((l) => l.uri.startsWith(`/api/uploads/${uploadId}`));
    expect(after.filter((l) => l.status === '204' || l.status === '201').pop()?.upstream).toBe(survivor);
  });

  it('stops everything it started on SIGTERM', async () => {
    const pids: Record<string, number> = {
      nginx: info.nginx.pid,
      ...Object.fromEntries(info.apps.map((app, i) => [`app${i + 1}`, app.pid])),
      ...Object.fromEntries(info.nodes.map((node) => [node.name, node.pid])),
    };
    const exited = new Promise((resolve) => child.once('exit', resolve));
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
    // pnpm may exit before the cluster behind it has finished stopping its processes.
    const deadline = Date.now() + 30_000;
    const running = () => Object.entries(pids).filter(([, pid]) => alive(pid));
    while (running().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(running()).toEqual([]);
  }, 60_000);
});
