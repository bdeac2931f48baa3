import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type SshdHandle, startSshd } from '@dfs/cluster/sshd';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { postForm, uploader } from '../support/uploads.ts';

const MiB = 1024 * 1024;
const root = process.getuid?.() === 0;

/**
 * A local node on a 200 MiB tmpfs: a real disk that fills up. The heartbeat measures it once, at
 * start, so what the app believes is free stays what it measured then.
 */
describe.runIf(root)('a storage node whose disk fills up', () => {
  let mountDir: string;
  let nodeDir: string;
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    mountDir = await mkdtemp(path.join(os.tmpdir(), 'dfs-full-disk-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=200m', 'tmpfs', mountDir]);
    nodeDir = path.join(mountDir, 'node');
    await mkdir(nodeDir);
    t = await startTestApp({
      DFS_NODES: `local://${nodeDir}`,
      DFS_REPLICAS: '1',
      DFS_HEARTBEAT_SECONDS: '3600',
    });
    alice = await t.user('alice');
  });
  afterAll(async () => {
    await t?.close();
    execFileSync('umount', [mountDir]);
    await rm(mountDir, { recursive: true, force: true });
  });

  const parts = async () => {
    const dir = path.join(nodeDir, '.parts');
    return existsSync(dir) ? readdir(dir) : [];
  };

  it('takes the uploads it has room for when several start together, and 507 for the rest', async () => {
    const up = uploader(t, alice.headers);
    const started = await Promise.all(
      [0, 1, 2, 3, 4].map((i) => up.create({ name: `big ${i}.bin`, size: 80 * MiB })),
    );
    const statuses = started.map((res) => res.statusCode).sort();
    expect(statuses).toEqual([201, 201, 507, 507, 507]);
    for (const res of started.filter((r) => r.statusCode === 507)) {
      expect(errorCode(res)).toBe('insufficient_storage');
    }
    // An upload that ends gives its room back.
    const [first] = started.filter((r) => r.statusCode === 201);
    expect((await up.abort(first!.json().uploadId)).statusCode).toBe(204);
    const again = await up.create({ name: 'big again.bin', size: 80 * MiB });
    expect(again.statusCode, again.body).toBe(201);
    for (const res of [...started, again].filter((r) => r.statusCode === 201)) {
      await up.abort(res.json().uploadId);
    }
  });

  it('answers 507 and leaves no part file behind when the disk is really full (ENOSPC)', async () => {
    // Filled behind the app's back: it still believes the 200 MiB it measured are free.
    const filler = path.join(mountDir, 'filler');
    await writeFile(filler, Buffer.alloc(185 * MiB));
    try {
      const res = await postForm(t, alice.headers, 'too big.bin', random(40 * MiB));
      expect(res.statusCode, res.body).toBe(507);
      expect(errorCode(res)).toBe('insufficient_storage');
      expect(res.json().error.message).toMatch(/no room/);
      expect(await parts()).toEqual([]);
    } finally {
      await rm(filler);
    }
    // With the room back, the same upload goes through.
    const ok = await postForm(t, alice.headers, 'fits.bin', random(40 * MiB));
    expect(ok.statusCode, ok.body).toBe(201);
  });

  it('answers 507 to the chunk that finds the disk full', async () => {
    await expectChunkOnFullDisk(t, alice.headers, mountDir);
  });
});

/** Sends a 40 MiB upload's chunks with 15 MiB left on the disk: the one that does not fit is 507. */
async function expectChunkOnFullDisk(t: TestApp, headers: Record<string, string>, mountDir: string) {
  const up = uploader(t, headers);
  const created = await up.create({ name: 'chunked.bin', size: 40 * MiB });
  expect(created.statusCode, created.body).toBe(201);
  const { uploadId, chunkSize } = created.json() as { uploadId: string; chunkSize: number };
  const filler = path.join(mountDir, 'filler');
  const { bavail, bsize } = await statfs(mountDir);
  await writeFile(filler, Buffer.alloc(bavail * bsize - 15 * MiB));
  try {
    const data = random(40 * MiB);
    let last = created;
    for (let i = 0; i * chunkSize < data.length; i++) {
      last = await up.put(uploadId, i, data.subarray(i * chunkSize, (i + 1) * chunkSize));
      if (last.statusCode !== 204) break;
    }
    expect(last.statusCode, last.body).toBe(507);
    expect(errorCode(last)).toBe('insufficient_storage');
  } finally {
    await rm(filler);
    await up.abort(uploadId);
  }
}

/** The same disk filling up under an SFTP node: OpenSSH reports ENOSPC as a plain failure. */
describe.runIf(root)("an SFTP node whose server's disk fills up", () => {
  let sshd: SshdHandle;
  let mountDir: string;
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    sshd = await startSshd();
    mountDir = await mkdtemp(path.join(os.tmpdir(), 'dfs-full-sftp-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=200m,mode=0777', 'tmpfs', mountDir]);
    t = await startTestApp({
      DFS_NODES: sshd.url('password', path.join(mountDir, 'node')),
      DFS_REPLICAS: '1',
      DFS_HEARTBEAT_SECONDS: '3600',
    });
    alice = await t.user('alice');
  });
  afterAll(async () => {
    await t?.close();
    await sshd?.stop();
    execFileSync('umount', [mountDir]);
    await rm(mountDir, { recursive: true, force: true });
  });

  it('answers 507 to a one-request upload that does not fit, and takes it once there is room', async () => {
    const filler = path.join(mountDir, 'filler');
    await writeFile(filler, Buffer.alloc(185 * MiB));
    try {
      const res = await postForm(t, alice.headers, 'too big.bin', random(40 * MiB));
      expect(res.statusCode, res.body).toBe(507);
      expect(errorCode(res)).toBe('insufficient_storage');
      expect(await readdir(path.join(mountDir, 'node', '.parts'))).toEqual([]);
    } finally {
      await rm(filler);
    }
    const ok = await postForm(t, alice.headers, 'fits.bin', random(40 * MiB));
    expect(ok.statusCode, ok.body).toBe(201);
  });

  it('answers 507 to the chunk that finds the disk full', async () => {
    await expectChunkOnFullDisk(t, alice.headers, mountDir);
  });
});
