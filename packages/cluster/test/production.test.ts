import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, ServerProcess } from '../src/app-process.ts';
import { litmus, rclone, readmeRcloneRemote, tusUploadResumed } from '../src/clients.ts';

const REPO = path.resolve(import.meta.dirname, '../../..');
const MiB = 1024 * 1024;
const sha1 = (data: Buffer) => createHash('sha1').update(data).digest('hex');

/**
 * The server as `pnpm start` runs it — the esbuild bundle serving the built web app, SQLite and a
 * local node by default — driven by the real clients a user points at it: litmus, rclone set up
 * with the README's line, tus-js-client. (The cluster suite runs them through nginx as well.)
 */
describe('the production bundle with the web app, against real clients', () => {
  let dir: string;
  let server: ServerProcess;
  let base: string;
  let token: string;
  let secret: string;

  const api = async (method: string, url: string, body?: object) => {
    const res = await fetch(`${base}${url}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return {
      status: res.status,
      body: (await res.json().catch(() => ({}))) as { token: string; secret: string; items: unknown[] },
    };
  };

  beforeAll(async () => {
    for (const built of ['packages/server/dist/main.js', 'packages/web/dist/index.html']) {
      if (!existsSync(path.join(REPO, built)))
        throw new Error(`${built} is missing: run \`pnpm build\` first`);
    }
    dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-prod-'));
    server = new ServerProcess(
      { DFS_PORT: String(await freePort()), DFS_DATA_DIR: path.join(dir, 'data') },
      { built: true },
    );
    await server.start();
    base = server.baseUrl;
    const user = { username: 'alice', password: 'correct horse battery' };
    expect((await api('POST', '/api/auth/signup', user)).status).toBe(201);
    token = (await api('POST', '/api/auth/signin', user)).body.token;
    const made = await api('POST', '/api/auth/app-passwords', { name: 'clients' });
    expect(made.status).toBe(201);
    secret = made.body.secret;
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves the web app, and a WebDAV GET of a dotless name is the file', async () => {
    const shell = await fetch(`${base}/files`);
    expect(await shell.text()).toContain('<div id="app">');
    const basic = { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}` };
    const data = Buffer.from('all:\n\techo built\n');
    const put = await fetch(`${base}/dav/Makefile`, { method: 'PUT', headers: basic, body: data });
    expect(put.status).toBe(201);
    const got = await fetch(`${base}/dav/Makefile`, { headers: basic });
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(data)).toBe(true);
  });

  it('passes every litmus suite', async () => {
    const suites = ['basic', 'copymove', 'props', 'locks', 'http'];
    const { ok, out } = await litmus(`${base}/dav/`, 'alice', secret, suites.join(' '));
    const summaries = out.match(/<- summary for `\w+': of \d+ tests run: \d+ passed, \d+ failed/g) ?? [];
    expect(summaries, out).toHaveLength(suites.length);
    for (const line of summaries) expect(line, out).toMatch(/, 0 failed$/);
    expect(ok, out).toBe(true);
  }, 300_000);

  describe("rclone, set up with the README's line", () => {
    let env: NodeJS.ProcessEnv;
    let work: string;

    beforeAll(async () => {
      work = path.join(dir, 'rclone');
      await mkdir(work);
      env = await readmeRcloneRemote(work, `${base}/remote.php/dav/files/alice`, secret);
    });

    it('copies a tree of 200 files up, checks it, and brings it back byte for byte', async () => {
      const up = path.join(work, 'tree');
      const made = new Map<string, Buffer>();
      for (let i = 0; i < 200; i++) {
        const folder = ['', 'a/', 'a/b/', 'Ünïcode ✓/', 'Ünïcode ✓/深い/'][i % 5]!;
        // Every tenth name has no dot, as a Makefile or a README has.
        const name = `${folder}file ${String(i).padStart(3, '0')}${i % 10 === 0 ? '' : i % 7 === 0 ? ' été.bin' : '.bin'}`;
        const data = randomBytes(100 + ((i * 7919) % 20_000));
        made.set(name, data);
        await mkdir(path.dirname(path.join(up, name)), { recursive: true });
        await writeFile(path.join(up, name), data);
      }
      await rclone(env, 'copy', '--transfers', '8', up, 'dfs:rclone-tree');
      const listed = (await rclone(env, 'lsf', '-R', '--files-only', 'dfs:rclone-tree')).stdout
        .trim()
        .split('\n');
      expect(listed.sort()).toEqual([...made.keys()].sort());
      const check = await rclone(env, 'check', up, 'dfs:rclone-tree');
      expect(check.stderr).toContain('0 differences found');
      // vendor=nextcloud: SHA-1s compared, not sizes alone.
      expect(check.stderr).not.toContain('No common hash found');
      const back = path.join(work, 'back');
      await rclone(env, 'copy', 'dfs:rclone-tree', back);
      for (const [name, data] of made)
        expect((await readFile(path.join(back, name))).equals(data), name).toBe(true);
    }, 180_000);
  });

  it('takes a tus-js-client upload, interrupted and resumed', async () => {
    const data = randomBytes(3 * MiB + 4321);
    const { url, offsets } = await tusUploadResumed(
      `${base}/api/tus/`,
      secret,
      data,
      'from tus-js-client.bin',
    );
    expect(url.startsWith(`${base}/api/tus/`), url).toBe(true);
    // It went on from where the first run stopped (two PATCHes of 700 KiB, then a third in flight).
    expect(offsets[0]).toBeGreaterThanOrEqual(2 * 700 * 1024);
    expect(offsets[0]).toBeLessThan(data.length);
    const found = await api('GET', '/api/files?q=from%20tus-js-client');
    expect(found.body.items).toMatchObject([{ size: data.length, sha1: sha1(data) }]);
  }, 120_000);
});
