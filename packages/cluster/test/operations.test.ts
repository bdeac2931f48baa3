import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, ServerProcess } from '../src/app-process.ts';

const REPO = path.resolve(import.meta.dirname, '../../..');
const sha1 = (data: Buffer) => createHash('sha1').update(data).digest('hex');

/** A command as docs/OPERATIONS.md writes it, run from the checkout with the server's settings. */
function command(
  program: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      program,
      args,
      { cwd: REPO, env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * docs/OPERATIONS.md's runbook against the production bundle, with its commands as written: the
 * metrics scraped with the token, `pnpm dfs admin backup` while the server runs, `verify` and
 * `migrate --dry-run` and `doctor` from the built `dist/admin.js`, `restore` into a new data
 * directory, and a second server started there on the same node serving every file.
 */
describe("the operator's runbook, on the production bundle", () => {
  const token = randomBytes(24).toString('base64url');
  let dir: string;
  let dataDir: string;
  let server: ServerProcess;
  let restored: ServerProcess | undefined;
  let basic: string;
  const files = new Map<string, Buffer>();

  beforeAll(async () => {
    for (const built of ['packages/server/dist/main.js', 'packages/server/dist/admin.js']) {
      if (!existsSync(path.join(REPO, built)))
        throw new Error(`${built} is missing: run \`pnpm build\` first`);
    }
    dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-ops-'));
    dataDir = path.join(dir, 'data');
    server = new ServerProcess(
      { DFS_PORT: String(await freePort()), DFS_DATA_DIR: dataDir, DFS_METRICS_TOKEN: token },
      { built: true },
    );
    await server.start();
    const user = { username: 'alice', password: 'correct horse battery' };
    const json = { 'content-type': 'application/json' };
    expect(
      (
        await fetch(`${server.baseUrl}/api/auth/signup`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify(user),
        })
      ).status,
    ).toBe(201);
    const { token: session } = (await (
      await fetch(`${server.baseUrl}/api/auth/signin`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify(user),
      })
    ).json()) as { token: string };
    const made = await fetch(`${server.baseUrl}/api/auth/app-passwords`, {
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${session}` },
      body: JSON.stringify({ name: 'runbook' }),
    });
    const { secret } = (await made.json()) as { secret: string };
    basic = `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}`;
    for (const [name, size] of [
      ['notes.txt', 1234],
      ['photo.jpg', 300_000],
      ['archive.bin', 3 * 1024 * 1024],
    ] as const) {
      const data = randomBytes(size);
      files.set(name, data);
      const put = await fetch(`${server.baseUrl}/dav/${name}`, {
        method: 'PUT',
        headers: { authorization: basic },
        body: data,
      });
      expect(put.status).toBe(201);
    }
  }, 90_000);

  afterAll(async () => {
    await restored?.stop();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves /metrics to Prometheus with the token, and its counters follow the uploads', async () => {
    expect((await fetch(`${server.baseUrl}/metrics`)).status).toBe(401);
    const res = await fetch(`${server.baseUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    const stored = /^dfs_uploads_completed_total\{kind="stored"\} (\d+)$/m.exec(text);
    expect(Number(stored?.[1])).toBe(files.size);
  });

  it('backs up while serving, verifies, restores into a new data directory, and a server there serves every file', async () => {
    const env = { DFS_DATA_DIR: dataDir };
    const backups = path.join(dir, 'backups');
    const backup = await command('pnpm', ['dfs', 'admin', 'backup', backups], env);
    expect(backup.code, backup.stderr).toBe(0);
    // pnpm prints its own banner first; the command's answer is its last line.
    const folder = backup.stdout.trim().split('\n').at(-1)!;
    expect(path.dirname(folder)).toBe(backups);
    expect((await readdir(folder)).sort()).toEqual([
      'contents.jsonl',
      'dfs.sqlite',
      'manifest.json',
      'secret',
    ]);

    const verify = await command('node', ['packages/server/dist/admin.js', 'verify', folder], env);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain(`contents: ${files.size} `);

    const dryRun = await command('node', ['packages/server/dist/admin.js', 'migrate', '--dry-run'], env);
    expect(dryRun.code, dryRun.stderr).toBe(0);
    const doctor = await command('node', ['packages/server/dist/admin.js', 'doctor'], env);
    expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);
    expect(doctor.stdout).not.toMatch(/^FAIL/m);

    const newDir = path.join(dir, 'restored');
    const restore = await command('pnpm', ['dfs', 'admin', 'restore', folder, '--data-dir', newDir], env);
    expect(restore.code, restore.stderr).toBe(0);

    // The same node: contents are immutable, a restore brings back the metadata and the secret.
    restored = new ServerProcess(
      {
        DFS_PORT: String(await freePort()),
        DFS_DATA_DIR: newDir,
        DFS_NODES: `local://${path.join(dataDir, 'nodes', 'local')}`,
      },
      { built: true },
    );
    await restored.start();
    for (const [name, data] of files) {
      const got = await fetch(`${restored.baseUrl}/dav/${name}`, { headers: { authorization: basic } });
      expect(got.status, name).toBe(200);
      expect(sha1(Buffer.from(await got.arrayBuffer())), name).toBe(sha1(data));
    }
  }, 180_000);
});
