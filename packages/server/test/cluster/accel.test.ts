import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rm, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type RunningNginx, startNginx } from '@dfs/cluster/nginx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppInstance, buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { scrub } from '../../src/jobs/scrub.ts';
import type { TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { uploader } from '../support/uploads.ts';

/**
 * Downloads nginx serves from a node's directory (X-Accel-Redirect) with Debian's nginx in front
 * of the app, configured from the project's own deploy/nginx.conf and accel template.
 */
describe('downloads served by nginx (X-Accel-Redirect)', () => {
  let dir: string;
  let app: AppInstance;
  let nginx: RunningNginx;
  let headers: Record<string, string>;
  const data = random(300_000);
  let fileId: string;
  let objectPath: string;

  const viaNginx = (url: string, extra: Record<string, string> = {}) =>
    fetch(`${nginx.url}${url}`, { headers: { ...headers, ...extra }, redirect: 'manual' });
  const lastLogLine = async () => (await readFile(nginx.accessLog, 'utf8')).trimEnd().split('\n').pop() ?? '';

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-accel-'));
    const served = path.join(dir, 'served');
    const streamed = path.join(dir, 'streamed');
    const config = loadConfig({
      DFS_DATA_DIR: path.join(dir, 'data'),
      DFS_PORT: '0',
      DFS_NODES: `local://${served},local://${streamed}`,
      DFS_REPLICAS: '2',
      DFS_ACCEL_REDIRECT: `/_dfs/served/=local://${served}`,
      DFS_TRUST_PROXY: 'true',
      DFS_LOG_LEVEL: process.env.DFS_TEST_LOG_LEVEL ?? 'silent',
      DFS_MIN_FREE_BYTES: '0',
    });
    app = await buildApp(config);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address() as { port: number };
    nginx = await startNginx({
      dir: path.join(dir, 'nginx'),
      apps: [`127.0.0.1:${address.port}`],
      accel: [{ location: '/_dfs/served/', dir: served }],
    });
    const body = { username: 'alice', password: 'correct horse battery' };
    await app.inject({ method: 'POST', url: '/api/auth/signup', payload: body });
    const signin = await app.inject({ method: 'POST', url: '/api/auth/signin', payload: body });
    headers = { authorization: `Bearer ${(signin.json() as { token: string }).token}` };
    const file = await uploader({ app } as TestApp, headers).upload(data, '报告 final.pdf');
    fileId = file.id;
    const sha1 = createHash('sha1').update(data).digest('hex');
    objectPath = path.join(served, 'objects', sha1.slice(0, 2), sha1.slice(2, 4), sha1);
  }, 60_000);

  afterAll(async () => {
    await nginx?.stop();
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses a mapping that is malformed or names no configured node', async () => {
    const base = { DFS_DATA_DIR: path.join(dir, 'data'), DFS_LOG_LEVEL: 'silent' };
    expect(() => loadConfig({ ...base, DFS_ACCEL_REDIRECT: 'local:///srv/a' })).toThrow(/DFS_ACCEL_REDIRECT/);
    expect(() => loadConfig({ ...base, DFS_ACCEL_REDIRECT: 'no-slash=local:///srv/a' })).toThrow(/location/);
    const config = loadConfig({
      ...base,
      DFS_DATA_DIR: path.join(dir, 'other'),
      DFS_NODES: `local://${path.join(dir, 'other-node')}`,
      DFS_ACCEL_REDIRECT: '/_dfs/x/=local:///not/a/node',
    });
    await expect(buildApp(config)).rejects.toThrow(/DFS_ACCEL_REDIRECT.*not one of DFS_NODES/);
  });

  it('has the app answer with an internal redirect instead of the bytes', async () => {
    const res = await app.inject({ method: 'GET', url: `/api/files/${fileId}/content`, headers });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-accel-redirect']).toMatch(
      /^\/_dfs\/served\/objects\/[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{40}$/,
    );
    expect(res.rawPayload.length).toBe(0);
  });

  it("sends the whole file from the node's directory with the app's headers", async () => {
    const res = await viaNginx(`/api/files/${fileId}/content`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    expect(res.headers.get('content-disposition')).toMatch(
      /^attachment; filename="BaoGao final.pdf"; filename\*=UTF-8''/,
    );
    expect(res.headers.get('etag')).toBe(`"${createHash('sha1').update(data).digest('hex')}"`);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox");
    expect(res.headers.get('x-accel-redirect')).toBeNull();
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    // The final URI of the request was the internal location: nginx sent the file itself.
    expect(await lastLogLine()).toMatch(
      new RegExp(`200 GET /api/files/${fileId}/content /_dfs/served/objects/`),
    );
  });

  it('answers a Range itself', async () => {
    const res = await viaNginx(`/api/files/${fileId}/content`, { range: 'bytes=1000-1999' });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes 1000-1999/${data.length}`);
    expect(Buffer.from(await res.arrayBuffer()).equals(data.subarray(1000, 2000))).toBe(true);
    const tail = await viaNginx(`/api/files/${fileId}/content`, { range: 'bytes=-10' });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(data.subarray(data.length - 10))).toBe(true);
    expect(await lastLogLine()).toContain('/_dfs/served/');
  });

  it('leaves If-Range and unauthorized requests to the app, and hides the internal location', async () => {
    const etag = `"${createHash('sha1').update(data).digest('hex')}"`;
    const resumed = await viaNginx(`/api/files/${fileId}/content`, { range: 'bytes=5-9', 'if-range': etag });
    expect(resumed.status).toBe(206);
    expect(Buffer.from(await resumed.arrayBuffer()).equals(data.subarray(5, 10))).toBe(true);
    expect(await lastLogLine()).not.toContain('/_dfs/');
    const anonymous = await fetch(`${nginx.url}/api/files/${fileId}/content`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    const direct = await fetch(
      `${nginx.url}${(await app.inject({ url: `/api/files/${fileId}/content`, headers })).headers['x-accel-redirect']}`,
    );
    expect(direct.status).toBe(404);
  });

  it('sends nginx only copies verified within a day; the app streams and checks the others', async () => {
    const bytes = random(200_000);
    const file = await uploader({ app } as TestApp, headers).upload(bytes, 'rotting.bin');
    const sha1 = createHash('sha1').update(bytes).digest('hex');
    const { repos, db } = app.services;
    const content = (await repos.contents.findBySha1(sha1))!;
    const served = (await repos.nodes.list()).find((n) => n.name.endsWith('/served'))!;
    const copy = path.join(dir, 'served', 'objects', sha1.slice(0, 2), sha1.slice(2, 4), sha1);
    const replica = () => db('replicas').where({ content_id: content.id, node_id: served.id });
    const redirected = async () =>
      (await app.inject({ url: `/api/files/${file.id}/content`, headers })).headers['x-accel-redirect'];

    // Written a moment ago: verified as it was stored, so nginx may send it.
    expect(await redirected()).toMatch(/^\/_dfs\/served\//);
    // Last verified 25 hours ago, and a byte has rotted since: the app streams the download,
    // checking every block (a bad one comes from the other copy), and nginx sends nothing.
    await replica().update({
      created_at: Date.now() - 25 * 3600_000,
      verified_at: Date.now() - 25 * 3600_000,
    });
    const fh = await open(copy, 'r+');
    await fh.write(Buffer.from([bytes[1234]! ^ 0xff]), 0, 1, 1234);
    await fh.close();
    expect(await redirected()).toBeUndefined();
    const res = await viaNginx(`/api/files/${file.id}/content`, { range: 'bytes=1000-1999' });
    expect(res.status).toBe(206);
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(1000, 2000))).toBe(true);
    expect(await lastLogLine()).not.toContain('/_dfs/');
  });

  it('scrubs the copies nginx serves twice a day, so verified ones keep going to nginx', async () => {
    const bytes = random(150_000);
    const file = await uploader({ app } as TestApp, headers).upload(bytes, 'aging.bin');
    const sha1 = createHash('sha1').update(bytes).digest('hex');
    const { repos, db, clusterJobs } = app.services;
    const content = (await repos.contents.findBySha1(sha1))!;
    const at = Date.now() - 13 * 3600_000;
    await db('replicas').where({ content_id: content.id }).update({ created_at: at, verified_at: at });
    const report = await scrub(clusterJobs.deps, { bytesPerSecond: 1e9 });
    const rows = await db('replicas').where({ content_id: content.id });
    const nodes = new Map((await repos.nodes.list()).map((n) => [n.id, n.name]));
    const verifiedOn = (suffix: string) =>
      Number(rows.find((r: { node_id: string }) => nodes.get(r.node_id)?.endsWith(suffix))?.verified_at);
    // The served copy was checked at half the day; the other waits for the 30-day round.
    expect(verifiedOn('/served')).toBeGreaterThan(Date.now() - 60_000);
    expect(verifiedOn('/streamed')).toBe(at);
    expect(report.checked).toBeGreaterThanOrEqual(1);
    const res = await app.inject({ url: `/api/files/${file.id}/content`, headers });
    expect(res.headers['x-accel-redirect']).toMatch(/^\/_dfs\/served\//);
  });

  it('streams from another replica when the served copy is gone', async () => {
    await unlink(objectPath);
    const res = await viaNginx(`/api/files/${fileId}/content`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
    expect(await lastLogLine()).not.toContain('/_dfs/');
  });
});
