import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, ServerProcess } from '@dfs/cluster/app-process';
import { type SshdHandle, startSshd } from '@dfs/cluster/sshd';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunksOf, md5Base64, random, sha1 } from '../support/bytes.ts';
import { testDatabaseUrl } from '../support/db.ts';

const CHUNK = 256 * 1024;

/**
 * Two app processes on one MariaDB and the same two SFTP nodes, each with its own data dir: no
 * upload state may live in one of them. SQLite is an embedded, one-process database, so this suite
 * runs on the mariadb project only.
 */
describe.runIf(process.env.DFS_TEST_DB === 'mysql')('two app instances share every upload', () => {
  let sshd: SshdHandle;
  let database: Awaited<ReturnType<typeof testDatabaseUrl>>;
  const dirs: string[] = [];
  let a: ServerProcess;
  let b: ServerProcess;
  let auth: Record<string, string>;

  const call = (server: ServerProcess, method: string, url: string, body?: object | Buffer) =>
    fetch(`${server.baseUrl}${url}`, {
      method,
      headers: {
        ...auth,
        ...(Buffer.isBuffer(body)
          ? { 'content-type': 'application/octet-stream', 'content-md5': md5Base64(body) }
          : body
            ? { 'content-type': 'application/json' }
            : {}),
      },
      body: Buffer.isBuffer(body) ? new Uint8Array(body) : body ? JSON.stringify(body) : undefined,
    });

  const nodeRoot = (i: number) => path.join(sshd.root, `node${i}`);
  const partsLeft = async () => {
    const out: string[] = [];
    for (const i of [1, 2]) out.push(...(await readdir(path.join(nodeRoot(i), '.parts')).catch(() => [])));
    return out;
  };

  beforeAll(async () => {
    sshd = await startSshd();
    database = await testDatabaseUrl();
    const shared = {
      DFS_DB_URL: database.url,
      DFS_NODES: [1, 2].map((i) => sshd.url('password', nodeRoot(i))).join(','),
      DFS_REPLICAS: '2',
      DFS_CHUNK_SIZE: String(CHUNK),
      // One secret for both, as a deployment would configure it; the data dirs stay apart.
      DFS_SECRET: 'two-instances-test-secret-0123456789abcdef',
      DFS_MIN_FREE_BYTES: '0',
    };
    const make = async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-two-'));
      dirs.push(dir);
      return new ServerProcess({ ...shared, DFS_PORT: String(await freePort()), DFS_DATA_DIR: dir });
    };
    a = await make();
    b = await make();
    // One after the other: the second start finds the schema migrated.
    await a.start();
    await b.start();
    const user = { username: 'twin', password: 'password-123' };
    expect((await call(a, 'POST', '/api/auth/signup', user)).status).toBe(201);
    const { token } = await (await call(b, 'POST', '/api/auth/signin', user)).json();
    auth = { authorization: `Bearer ${token}` };
  }, 120_000);

  afterAll(async () => {
    await a?.kill();
    await b?.kill();
    await database?.drop();
    await sshd?.stop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  const create = async (server: ServerProcess, name: string, data: Buffer) => {
    const res = await call(server, 'POST', '/api/uploads', { name, size: data.length, sha1: sha1(data) });
    expect(res.status).toBe(201);
    return (await res.json()) as { uploadId: string; chunkCount: number };
  };

  it('takes chunks alternately on both and completes on either', async () => {
    const data = random(CHUNK * 6 + 1234);
    const chunks = chunksOf(data, CHUNK);
    const { uploadId } = await create(a, 'alternating.bin', data);
    for (const [i, chunk] of chunks.entries()) {
      const res = await call(i % 2 === 0 ? a : b, 'PUT', `/api/uploads/${uploadId}/chunks/${i}`, chunk);
      expect(res.status, `chunk ${i}`).toBe(204);
    }
    const state = await (await call(a, 'GET', `/api/uploads/${uploadId}`)).json();
    expect(state.receivedChunks).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const done = await call(b, 'POST', `/api/uploads/${uploadId}/complete`);
    expect(done.status).toBe(201);
    const { file } = await done.json();
    expect(file.sha1).toBe(sha1(data));
    for (const server of [a, b]) {
      const body = Buffer.from(
        await (await call(server, 'GET', `/api/files/${file.id}/content`)).arrayBuffer(),
      );
      expect(body.equals(data)).toBe(true);
    }
    expect(await partsLeft()).toEqual([]);
  });

  it('concurrent completes on both instances: one file, the other caller told upload_busy', async () => {
    const data = random(CHUNK * 3 + 7);
    const { uploadId } = await create(b, 'raced.bin', data);
    for (const [i, chunk] of chunksOf(data, CHUNK).entries()) {
      expect((await call(i % 2 ? a : b, 'PUT', `/api/uploads/${uploadId}/chunks/${i}`, chunk)).status).toBe(
        204,
      );
    }
    const results = await Promise.all(
      [a, b, a, b].map((s) => call(s, 'POST', `/api/uploads/${uploadId}/complete`)),
    );
    const bodies = await Promise.all(results.map((r) => r.json()));
    const done = results.map((r, i) => ({ status: r.status, body: bodies[i] }));
    const ok = done.filter((d) => d.status === 201);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(new Set(ok.map((d) => d.body.file.id)).size).toBe(1);
    for (const d of done.filter((x) => x.status !== 201)) {
      expect(d.status).toBe(409);
      expect(d.body.error.code).toBe('upload_busy');
    }
    const busy = results.filter((r) => r.status === 409);
    for (const r of busy) expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    const listed = await (await call(a, 'GET', '/api/files?q=raced')).json();
    expect(listed.total).toBe(1);
  });

  it('one instance SIGKILLed mid-upload: the other takes the rest and completes', async () => {
    const data = random(CHUNK * 8 + 99);
    const chunks = chunksOf(data, CHUNK);
    const { uploadId } = await create(a, 'survivor.bin', data);
    for (const i of [0, 1, 2]) {
      expect(
        (await call(i % 2 ? b : a, 'PUT', `/api/uploads/${uploadId}/chunks/${i}`, chunks[i] as Buffer))
          .status,
      ).toBe(204);
    }
    // Chunk 3 is in flight to `a` when it dies: never acknowledged, so the client sends it again.
    const inFlight = call(a, 'PUT', `/api/uploads/${uploadId}/chunks/3`, chunks[3] as Buffer).catch(
      (err: Error) => err,
    );
    await a.kill('SIGKILL');
    await inFlight;
    const state = await (await call(b, 'GET', `/api/uploads/${uploadId}`)).json();
    for (const i of [0, 1, 2]) expect(state.receivedChunks).toContain(i);
    for (const [i, chunk] of chunks.entries()) {
      if (state.receivedChunks.includes(i)) continue;
      expect((await call(b, 'PUT', `/api/uploads/${uploadId}/chunks/${i}`, chunk)).status, `chunk ${i}`).toBe(
        204,
      );
    }
    // The dead instance's running hash is gone with it: b reads what it did not see back from a node.
    const done = await call(b, 'POST', `/api/uploads/${uploadId}/complete`);
    expect(done.status).toBe(201);
    const { file } = await done.json();
    expect(file.sha1).toBe(sha1(data));
    const body = Buffer.from(await (await call(b, 'GET', `/api/files/${file.id}/content`)).arrayBuffer());
    expect(body.equals(data)).toBe(true);
    // A restarted instance does not take over or undo the finished upload.
    await a.start();
    const again = await call(a, 'POST', `/api/uploads/${uploadId}/complete`);
    expect(again.status).toBe(201);
    expect((await again.json()).file.id).toBe(file.id);
    expect(await partsLeft()).toEqual([]);
  });
});
