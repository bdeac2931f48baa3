import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { litmus, nextcloudcmd, rclone, readmeRcloneRemote, tusUploadResumed } from '../src/clients.ts';
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

  /** A new app password of alice's, as a program gets one. */
  const appPassword = async (name: string) => {
    const res = await call('POST', '/api/auth/app-passwords', { name });
    expect(res.status).toBe(201);
    return ((await res.json()) as { secret: string }).secret;
  };

  it('serves the web app through nginx with the app’s own security headers', async () => {
    for (const url of ['/', '/files', '/files/abc', '/s/someToken']) {
      const res = await fetch(`${info.url}${url}`);
      expect(res.status, url).toBe(200);
      expect(await res.text(), url).toContain('<div id="app">');
      expect(res.headers.get('content-security-policy'), url).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-frame-options'), url).toBe('DENY');
      expect(res.headers.get('x-content-type-options'), url).toBe('nosniff');
      expect(res.headers.get('cache-control'), url).toBe('no-cache');
    }
  });

  it('passes every litmus suite through nginx, and GETs a dotless name as the file', async () => {
    const secret = await appPassword('litmus');
    const basic = { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}` };
    const makefile = Buffer.from('all:\n\techo built\n');
    expect((await call('PUT', '/dav/Makefile', makefile, basic)).status).toBe(201);
    const got = await call('GET', '/dav/Makefile', undefined, basic);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(makefile)).toBe(true);
    expect((await call('PROPFIND', '/dav/', undefined, { ...basic, depth: '1' })).status).toBe(207);

    const suites = ['basic', 'copymove', 'props', 'locks', 'http'];
    const { ok, out } = await litmus(`${info.url}/dav/`, 'alice', secret, suites.join(' '));
    const summaries = out.match(/<- summary for `\w+': of \d+ tests run: \d+ passed, \d+ failed/g) ?? [];
    expect(summaries, out).toHaveLength(suites.length);
    for (const line of summaries) expect(line, out).toMatch(/, 0 failed$/);
    expect(ok, out).toBe(true);
  }, 300_000);

  it("copies a tree up and down with rclone through nginx, set up with the README's own line", async () => {
    const secret = await appPassword('rclone');
    const work = path.join(dir, 'rclone');
    await mkdir(work);
    const env = await readmeRcloneRemote(work, `${info.url}/remote.php/dav/files/alice`, secret);
    const up = path.join(work, 'up');
    const made = new Map<string, Buffer>([
      ['Makefile', randomBytes(1234)],
      ['notes/README', randomBytes(10)],
      ['Photos/été à la mer.jpg', randomBytes(300_000)],
      ['big/twenty.bin', randomBytes(20 * MiB + 3)],
    ]);
    for (const [name, data] of made) {
      await mkdir(path.dirname(path.join(up, name)), { recursive: true });
      await writeFile(path.join(up, name), data);
    }
    await rclone(env, 'copy', '--transfers', '4', up, 'dfs:from-rclone');
    const check = await rclone(env, 'check', up, 'dfs:from-rclone');
    expect(check.stderr).toContain('0 differences found');
    // vendor=nextcloud: SHA-1s compared, not sizes alone.
    expect(check.stderr).not.toContain('No common hash found');
    const back = path.join(work, 'back');
    await rclone(env, 'copy', 'dfs:from-rclone', back);
    for (const [name, data] of made)
      expect((await readFile(path.join(back, name))).equals(data), name).toBe(true);
  }, 300_000);

  it("syncs a folder with nextcloudcmd through nginx: a chunked upload's requests all reach one instance", async () => {
    const secret = await appPassword('Nextcloud Desktop');
    const work = path.join(dir, 'nextcloud');
    await mkdir(path.join(work, 'sync', 'Vidéos'), { recursive: true });
    // Over the client's first chunk (10 MB): it goes through chunked upload v2.
    const big = randomBytes(30 * MiB + 7);
    await writeFile(path.join(work, 'sync', 'Vidéos', 'big.bin'), big);
    await writeFile(path.join(work, 'sync', 'note.txt'), 'small files go as one PUT\n');
    const run = await nextcloudcmd({
      dir: path.join(work, 'sync'),
      url: info.url,
      user: 'alice',
      password: secret,
      home: work,
    });
    expect(run.code, run.output.slice(-3000)).toBe(0);
    const found = await call('GET', '/api/files?q=big.bin');
    expect(((await found.json()) as { items: unknown[] }).items).toMatchObject([
      { size: big.length, sha1: sha1(big) },
    ]);
    // MKCOL, every chunk and the final MOVE of the upload folder went to one instance.
    const folder = (await accessLog()).filter((l) => l.uri.startsWith('/remote.php/dav/uploads/alice/'));
    expect(folder.map((l) => l.method)).toEqual(expect.arrayContaining(['MKCOL', 'PUT', 'MOVE']));
    expect(folder.length).toBeGreaterThanOrEqual(4);
    expect(new Set(folder.map((l) => l.upstream)).size).toBe(1);
  }, 180_000);

  it('resumes a tus-js-client upload through nginx on one instance, at the URL the client used', async () => {
    const data = randomBytes(3 * MiB + 4321);
    const { url } = await tusUploadResumed(
      `${info.url}/api/tus/`,
      await appPassword('tus'),
      data,
      'through nginx.bin',
    );
    // The Location keeps nginx's host and port (no DFS_PUBLIC_URL is set): the client resumed
    // through nginx.
    expect(url.startsWith(`${info.url}/api/tus/`), url).toBe(true);
    const found = await call('GET', '/api/files?q=through%20nginx');
    expect(((await found.json()) as { items: unknown[] }).items).toMatchObject([
      { size: data.length, sha1: sha1(data) },
    ]);
    // Every PATCH of the upload went to one instance, which hashed the bytes as they passed.
    const id = new URL(url).pathname.split('/').pop();
    const patches = (await accessLog()).filter((l) => l.method === 'PATCH' && l.uri === `/api/tus/${id}`);
    expect(patches.length).toBeGreaterThanOrEqual(5);
    expect(new Set(patches.map((l) => l.upstream)).size).toBe(1);
  }, 120_000);

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

  it("stops everything it started on SIGTERM to pnpm's own pid", async () => {
    const pids: Record<string, number> = {
      nginx: info.nginx.pid,
      ...Object.fromEntries(info.apps.map((app, i) => [`app${i + 1}`, app.pid])),
      ...Object.fromEntries(info.nodes.map((node) => [node.name, node.pid])),
      ...Object.fromEntries(info.pids.map((pid) => [`pid ${pid}`, pid])),
    };
    expect(info.db.pids.every((pid) => info.pids.includes(pid))).toBe(true);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Not the process group (Ctrl-C's way): only the pid the user started, as `kill` or a
    // service manager sends it.
    process.kill(child.pid!, 'SIGTERM');
    await exited;
    // pnpm may exit before the cluster behind it has finished stopping its processes.
    const deadline = Date.now() + 45_000;
    const running = () => Object.entries(pids).filter(([, pid]) => alive(pid));
    while (running().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(running()).toEqual([]);
    // nginx's port is free again.
    const port = Number(new URL(info.url).port);
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer().once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    expect(free).toBe(true);
  }, 90_000);
});
