import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { uploader } from '../support/uploads.ts';

const run = promisify(execFile);

/** Random bytes to a file, 1 MiB at a time; answers their SHA-1. */
async function writeRandomFile(file: string, size: number): Promise<string> {
  const hash = createHash('sha1');
  const out = createWriteStream(file);
  for (let left = size; left > 0; left -= 1 << 20) {
    const piece = randomBytes(Math.min(left, 1 << 20));
    hash.update(piece);
    if (!out.write(piece)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
  return hash.digest('hex');
}

async function sha1File(file: string): Promise<string> {
  const hash = createHash('sha1');
  for await (const piece of createReadStream(file)) hash.update(piece as Buffer);
  return hash.digest('hex');
}

/** Debian's rclone, a real WebDAV client, against /dav/ on a real socket. */
// The protocol is the same on either database (webdav.test.ts runs on both); the 1 GiB transfer
// runs once.
describe.skipIf(process.env.DFS_TEST_DB === 'mysql')('rclone (WebDAV remote) against /dav/', () => {
  let t: TestApp;
  let tmp: string;
  let env: NodeJS.ProcessEnv;
  let owner: Record<string, string>;
  const files = new Map<string, Buffer>([
    ['top.txt', random(3000)],
    ['Photos/2026/été à la mer.jpg', random(200_000)],
    ['Photos/notes #1.md', random(10)],
  ]);

  beforeAll(async () => {
    t = await startTestApp();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (t.app.server.address() as AddressInfo).port;
    const alice = await t.user('alice');
    owner = alice.headers;
    const secret = await t.appPassword(alice.headers, 'rclone');
    const up = uploader(t, alice.headers);
    const folders = new Map<string, string>();
    const folderOf = async (dir: string): Promise<string | undefined> => {
      if (dir === '.') return undefined;
      const known = folders.get(dir);
      if (known) return known;
      const parent = await folderOf(path.dirname(dir));
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/folders',
        headers: alice.headers,
        payload: { name: path.basename(dir), ...(parent ? { parentId: parent } : {}) },
      });
      folders.set(dir, res.json().file.id);
      return res.json().file.id;
    };
    for (const [name, data] of files)
      await up.upload(data, path.basename(name), await folderOf(path.dirname(name)));

    tmp = await mkdtemp(path.join(os.tmpdir(), 'dfs-rclone-'));
    await writeFile(path.join(tmp, 'rclone.conf'), '');
    const obscured = (await run('rclone', ['obscure', secret])).stdout.trim();
    env = {
      ...process.env,
      RCLONE_CONFIG: path.join(tmp, 'rclone.conf'),
      RCLONE_CONFIG_DFS_TYPE: 'webdav',
      RCLONE_CONFIG_DFS_URL: `http://127.0.0.1:${port}/dav/`,
      RCLONE_CONFIG_DFS_VENDOR: 'other',
      RCLONE_CONFIG_DFS_USER: 'alice',
      RCLONE_CONFIG_DFS_PASS: obscured,
    };
  });
  afterAll(async () => {
    await t.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('lists the tree and copies it down byte for byte', async () => {
    const listed = (await run('rclone', ['lsf', '-R', '--files-only', 'dfs:'], { env })).stdout
      .trim()
      .split('\n')
      .sort();
    expect(listed).toEqual([...files.keys()].sort());
    const out = path.join(tmp, 'down');
    await run('rclone', ['copy', 'dfs:', out], { env });
    for (const [name, data] of files) expect((await readFile(path.join(out, name))).equals(data)).toBe(true);
    // rclone's own comparison (sizes; the WebDAV ETag is not a hash it knows) finds no difference.
    const check = await run('rclone', ['check', '--size-only', 'dfs:', out], { env });
    expect(check.stderr).toContain('0 differences found');
  });

  it('copies a tree of 200 files up, checks it, and brings it back byte for byte', async () => {
    const up = path.join(tmp, 'tree');
    const made = new Map<string, Buffer>();
    for (let i = 0; i < 200; i++) {
      const dir = ['', 'a/', 'a/b/', 'Ünïcode ✓/', 'Ünïcode ✓/深い/'][i % 5]!;
      const name = `${dir}file ${String(i).padStart(3, '0')}${i % 7 === 0 ? ' été' : ''}.bin`;
      const data = random(100 + ((i * 7919) % 20_000));
      made.set(name, data);
      await mkdir(path.dirname(path.join(up, name)), { recursive: true });
      await writeFile(path.join(up, name), data);
    }
    await run('rclone', ['copy', '--transfers', '8', up, 'dfs:rclone-tree'], { env });
    const check = await run('rclone', ['check', '--size-only', up, 'dfs:rclone-tree'], { env });
    expect(check.stderr).toContain('0 differences found');
    const back = path.join(tmp, 'back');
    await run('rclone', ['copy', 'dfs:rclone-tree', back], { env });
    for (const [name, data] of made)
      expect((await readFile(path.join(back, name))).equals(data), name).toBe(true);
  });

  it('puts a 256 MiB file (32 chunks) and gets it back with the same SHA-1; the bytes exist once on the server', async () => {
    const big = path.join(tmp, 'big.bin');
    // Big enough to stream through many chunks and part files; the bench moves 1 GiB this way.
    const sha1 = await writeRandomFile(big, 256 * 1024 * 1024);
    await run('rclone', ['copyto', big, 'dfs:big/big file.bin'], { env, maxBuffer: 1 << 20 });
    const listed = (await t.app.inject({ url: '/api/files?q=big%20file', headers: owner })).json().items;
    expect(listed).toMatchObject([{ size: 256 * 1024 * 1024, sha1 }]);
    // The same bytes again over WebDAV: a second name, no second content.
    await run('rclone', ['copyto', big, 'dfs:big/again.bin'], { env });
    expect(await t.app.services.db('contents').where({ sha1 })).toHaveLength(1);
    const down = path.join(tmp, 'big-down.bin');
    await run('rclone', ['copyto', 'dfs:big/big file.bin', down], { env });
    expect(await sha1File(down)).toBe(sha1);
    await rm(big);
    await rm(down);
  }, 300_000);
});
