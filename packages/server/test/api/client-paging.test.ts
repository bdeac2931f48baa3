import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DfsApi } from '@dfs/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { uploader } from '../support/uploads.ts';

const run = promisify(execFile);

/** Listings answer 200 entries by default; the client core and the CLI page through the rest. */
describe('client paging against the server', () => {
  const FOLDERS = 205;
  const FILES = 3;
  let t: TestApp;
  let baseUrl: string;
  let api: DfsApi;

  beforeAll(async () => {
    t = await startTestApp();
    const alice = await t.user('alice');
    for (let i = 0; i < FOLDERS; i++) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/folders',
        headers: alice.headers,
        payload: { name: `dir${String(i).padStart(3, '0')}` },
      });
      if (res.statusCode !== 201) throw new Error(res.body);
    }
    const up = uploader(t, alice.headers);
    for (let i = 0; i < FILES; i++) await up.upload(random(100 + i), `file${i}.bin`);
    baseUrl = await t.app.listen({ port: 0, host: '127.0.0.1' });
    api = new DfsApi({ baseUrl, token: alice.token });
  });
  afterAll(() => t.close());

  it('gets one page from listFiles and everything from listAllFiles, in order', async () => {
    const one = await api.listFiles({ sort: 'name', order: 'asc' });
    expect(one.items).toHaveLength(200);
    expect(one.total).toBe(FOLDERS + FILES);

    const all = await api.listAllFiles({ sort: 'name', order: 'asc' });
    expect(all.total).toBe(FOLDERS + FILES);
    expect(all.items).toHaveLength(FOLDERS + FILES);
    expect(new Set(all.items.map((f) => f.id)).size).toBe(FOLDERS + FILES);
    expect(all.items.slice(-FILES).map((f) => f.name)).toEqual(['file0.bin', 'file1.bin', 'file2.bin']);

    // Small pages walk the same listing.
    const small = await api.listAllFiles({ sort: 'name', order: 'asc', limit: 9 });
    expect(small.items.map((f) => f.id)).toEqual(all.items.map((f) => f.id));
  });

  it('pages the trash', async () => {
    const all = await api.listAllFiles();
    for (const f of all.items) await api.deleteFile(f.id);
    expect((await api.listTrash()).items).toHaveLength(200);
    const trash = await api.listAllTrash();
    expect(trash.total).toBe(FOLDERS + FILES);
    expect(new Set(trash.items.map((f) => f.id))).toEqual(new Set(all.items.map((f) => f.id)));
    // Restore for the CLI test below.
    for (const f of trash.items) await api.restoreFromTrash(f.id);
  });

  it('lists a whole folder with the CLI', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-cli-'));
    try {
      const cli = path.resolve(import.meta.dirname, '../../../client/src/cli.ts');
      const env = {
        ...process.env,
        DFS_CLIENT_CONFIG: path.join(dir, 'config.json'),
        DFS_PASSWORD: 'correct horse battery',
      };
      const dfs = (...args: string[]) => run(process.execPath, ['--import', 'tsx', cli, ...args], { env });
      await dfs('login', baseUrl, 'alice');
      const { stdout, stderr } = await dfs('ls');
      expect(stdout.trim().split('\n')).toHaveLength(FOLDERS + FILES);
      expect(stderr).not.toMatch(/shown/);
      const json = JSON.parse((await dfs('ls', '--json')).stdout);
      expect(json.items).toHaveLength(FOLDERS + FILES);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
