import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  ApiError,
  DfsApi,
  fileSourceFromBytes,
  isAbortError,
  MemoryResumeStore,
  NetworkError,
  Upload,
  UploadQueue,
  type UploadTransport,
} from '@dfs/client';
import {
  fileSourceFromPath,
  nodeFetch,
  nodeFileFromBytes,
  nodeHasher,
  nodeHashFile,
  nodeUploadOptions,
} from '@dfs/client/node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildCli, CLI_PACKAGE_ROOT } from '../../../client/scripts/build-cli.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { random, sha1 } from '../support/bytes.ts';
import { CHUNK } from '../support/uploads.ts';

const run = promisify(execFile);

/** The client core and the CLI against the real server over HTTP. */
describe('client core against the server', () => {
  let t: TestApp;
  let baseUrl: string;
  let alice: DfsApi;
  let bob: DfsApi;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) });
    baseUrl = await t.app.listen({ port: 0, host: '127.0.0.1' });
    const a = await t.user('alice');
    const b = await t.user('bob');
    alice = new DfsApi({ baseUrl, token: a.token });
    bob = new DfsApi({ baseUrl, token: b.token });
  });
  afterAll(() => t.close());

  /** Uploads `data` through the chunked protocol (files this small would otherwise go in one request). */
  const uploadChunked = async (transport: UploadTransport, data: Buffer, name: string) => {
    const upload = new Upload(fileSourceFromBytes(data, name), {
      transport,
      smallFileLimit: -1,
      hashFile: nodeHashFile,
    });
    upload.start();
    return { upload, file: await upload.result() };
  };

  const chunkRows = async (uploadId: string) =>
    (await t.app.services.db('upload_chunks').where({ upload_id: uploadId })).length;

  it('uploads with parallel verified chunks, then a second user gets it instantly', async () => {
    const data = random(CHUNK * 9 + 77);
    const { upload, file } = await uploadChunked(alice, data, 'engine.bin');
    expect(file).toMatchObject({ name: 'engine.bin', size: data.length, sha1: sha1(data) });
    expect(upload.snapshot()).toMatchObject({ state: 'done', instant: false, sentBytes: data.length });

    const second = new Upload(fileSourceFromBytes(data, 'copy.bin'), {
      transport: bob,
      hasher: nodeHasher,
      smallFileLimit: -1,
    });
    second.start();
    const copy = await second.result();
    expect(copy.sha1).toBe(sha1(data));
    expect(second.snapshot()).toMatchObject({ instant: true, sentBytes: 0 });
  });

  it('pauses, then resumes sending only the chunks the server lacks', async () => {
    const data = random(CHUNK * 24);
    const store = new MemoryResumeStore();
    const upload = new Upload(fileSourceFromBytes(data, 'paused.bin'), {
      transport: alice,
      smallFileLimit: -1,
      hashFile: nodeHashFile,
      parallelism: 2,
      resumeStore: store,
    });
    let paused = false;
    upload.on('progress', (s) => {
      if (!paused && s.chunksDone >= 4) {
        paused = true;
        upload.pause();
      }
    });
    upload.start();
    await expect.poll(() => upload.snapshot().state).toBe('paused');
    const { uploadId } = upload.snapshot();
    // A chunk the pause cut off client-side may still be landing on the server: let it settle.
    let before = await chunkRows(uploadId as string);
    for (let settled = 0; settled < 3; ) {
      await new Promise((r) => setTimeout(r, 150));
      const now = await chunkRows(uploadId as string);
      settled = now === before ? settled + 1 : 0;
      before = now;
    }
    expect(before).toBeGreaterThanOrEqual(4);
    expect(before).toBeLessThan(24);

    // A fresh engine (a reload) with only the resume store: no re-hash, only missing chunks.
    let puts = 0;
    const counting: UploadTransport = {
      createUpload: (...args) => alice.createUpload(...args),
      getUpload: (...args) => alice.getUpload(...args),
      completeUpload: (...args) => alice.completeUpload(...args),
      abortUpload: (...args) => alice.abortUpload(...args),
      putChunk: (...args) => {
        puts++;
        return alice.putChunk(...args);
      },
    };
    let hashed = false;
    const again = new Upload(fileSourceFromBytes(data, 'paused.bin'), {
      transport: counting,
      hashFile: async (...args) => {
        hashed = true;
        return nodeHashFile(...args);
      },
      resumeStore: store,
    });
    again.start();
    const file = await again.result();
    expect(file.sha1).toBe(sha1(data));
    expect(hashed).toBe(false);
    expect(puts).toBe(24 - before);
    upload.cancel().catch(() => undefined);
  });

  it('speculative: sends while hashing; known content ends instantly and leaves no part behind', async () => {
    const partsDir = path.join(t.dataDir, 'nodes', 'local', '.parts');
    const data = random(CHUNK * 12 + 5);
    const first = new Upload(fileSourceFromBytes(data, 'spec.bin'), {
      transport: alice,
      hashFile: nodeHashFile,
      speculativeThreshold: CHUNK,
      smallFileLimit: -1,
    });
    first.start();
    expect(await first.result()).toMatchObject({ name: 'spec.bin', sha1: sha1(data), size: data.length });
    expect(first.snapshot()).toMatchObject({ route: 'speculative', instant: false });

    // Bob sends the same bytes; whatever he sent before his hash was known is thrown away.
    const second = new Upload(fileSourceFromBytes(data, 'spec-copy.bin'), {
      transport: bob,
      hashFile: nodeHashFile,
      speculativeThreshold: CHUNK,
      smallFileLimit: -1,
      parallelism: 1,
    });
    second.start();
    const copy = await second.result();
    expect(copy).toMatchObject({ name: 'spec-copy.bin', sha1: sha1(data) });
    expect(second.snapshot().instant).toBe(true);
    expect(await t.app.services.db('contents').where({ sha1: sha1(data) })).toHaveLength(1);
    const listed = (await bob.listFiles({ q: 'spec-copy' })).items;
    expect(listed).toHaveLength(1);
    const open = await t.app.services.db('uploads').whereNot({ status: 'complete' });
    expect(open).toHaveLength(0);
    // A chunk PUT the client gave up on may still be finishing on the server when the client is
    // done; its part is deleted as soon as that write ends (the upload is gone), so wait for it.
    const parts = async () => (existsSync(partsDir) ? await readdir(partsDir) : []);
    await vi
      .waitUntil(async () => (await parts()).length === 0, { timeout: 5000, interval: 50 })
      .catch(() => undefined);
    expect(await parts()).toEqual([]);
  });

  it('small files go in one request each', async () => {
    const files = Array.from({ length: 5 }, (_, i) => ({ name: `small-${i}.txt`, data: random(1000 + i) }));
    for (const f of files) {
      const upload = new Upload(fileSourceFromBytes(f.data, f.name), {
        transport: alice,
        hasher: nodeHasher,
      });
      upload.start();
      expect(await upload.result()).toMatchObject({ name: f.name, sha1: sha1(f.data) });
      expect(upload.snapshot().route).toBe('small');
    }
    expect(
      await t.app.services.db('uploads').whereIn(
        'name',
        files.map((f) => f.name),
      ),
    ).toHaveLength(0);
  });

  it('cancels: the server forgets the upload', async () => {
    const data = random(CHUNK * 12);
    const upload = new Upload(fileSourceFromBytes(data, 'cancel.bin'), {
      transport: alice,
      smallFileLimit: -1,
      hashFile: nodeHashFile,
    });
    upload.on('progress', (s) => {
      if (s.chunksDone >= 2 && s.state === 'uploading') void upload.cancel();
    });
    upload.start();
    await expect(upload.result()).rejects.toThrow();
    const { uploadId } = upload.snapshot();
    await expect
      .poll(
        async () =>
          (
            await t.app.inject({
              url: `/api/uploads/${uploadId}`,
              headers: { authorization: `Bearer ${alice.token}` },
            })
          ).statusCode,
      )
      .toBe(404);
  });

  it('streams a file from disk (positioned reads) and the CLI round-trips it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-cli-'));
    try {
      const input = path.join(dir, 'input.bin');
      const data = random(CHUNK * 5 + 3);
      await writeFile(input, data);
      const source = await fileSourceFromPath(input);
      const upload = new Upload(source, { transport: alice, hashFile: nodeHashFile, smallFileLimit: -1 });
      upload.start();
      expect((await upload.result()).sha1).toBe(sha1(data));

      // The CLI as it ships: the bundle `pnpm --filter @dfs/client build` makes, run by plain node
      // (built per test run beside the package, so its dependencies resolve and runs do not race).
      const cli = path.join(CLI_PACKAGE_ROOT, 'dist', `test-${randomUUID()}`, 'cli.js');
      await buildCli(cli);
      const env = {
        ...process.env,
        DFS_CLIENT_CONFIG: path.join(dir, 'config.json'),
        DFS_PASSWORD: 'correct horse battery',
      };
      const dfs = (...args: string[]) => run(process.execPath, [cli, ...args], { env });
      await dfs('login', baseUrl, 'alice');
      const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'));
      expect(config.server).toBe(baseUrl);
      const other = path.join(dir, 'other.bin');
      const otherData = random(CHUNK * 2 + 11);
      await writeFile(other, otherData);
      // The source's modification time becomes the entry's, to the millisecond.
      const modified = new Date('2019-07-08T09:10:11.125Z');
      await utimes(other, modified, modified);
      await dfs('upload', other, '--id');
      const listing = JSON.parse((await dfs('ls', '--json')).stdout);
      const entry = listing.items.find((f: { name: string }) => f.name === 'other.bin');
      expect(entry.sha1).toBe(sha1(otherData));
      expect(entry.mtime).toBe(modified.toISOString());
      // The same upload again (an interrupted run retried) skips what the folder already has.
      const again = await dfs('upload', other);
      expect(again.stderr).toContain('other.bin');
      expect(again.stderr).toContain('skipped: the folder already has it');
      const names = JSON.parse((await dfs('ls', '--json')).stdout).items.map((f: { name: string }) => f.name);
      expect(names.filter((name: string) => name.startsWith('other'))).toEqual(['other.bin']);
      const out = path.join(dir, 'downloaded.bin');
      await dfs('download', entry.id, out);
      expect((await readFile(out)).equals(otherData)).toBe(true);
      await expect(dfs('download', 'no-such-id', path.join(dir, 'x'))).rejects.toMatchObject({ code: 1 });
      expect((await dfs('help')).stdout).toMatch(/^usage:/);
      await rm(path.dirname(cli), { recursive: true, force: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("the CLI's Node fetch sends chunk bytes through undici and keeps fetch's answers and errors", async () => {
    const token = alice.token;
    const api = new DfsApi({ baseUrl, token, credentials: 'omit', fetch: nodeFetch });
    const data = random(CHUNK * 3 + 5);
    const { file } = await uploadChunked(api, data, 'node-fetch.bin');
    expect(file).toMatchObject({ size: data.length, sha1: sha1(data) });
    const stored = Buffer.from(await (await api.download(file.id)).arrayBuffer());
    expect(sha1(stored)).toBe(sha1(data));

    // A refused chunk still comes back as the server's typed JSON error.
    const other = random(CHUNK * 2);
    const session = await api.createUpload({ name: 'refused.bin', size: other.length, sha1: sha1(other) });
    if (session.status === 'challenge' || session.status === 'instant') {
      throw new Error(`expected an upload session, got ${session.status}`);
    }
    const wrongMd5 = Buffer.alloc(16, 7).toString('base64');
    const refused = await api
      .putChunk(session.uploadId, 0, other.subarray(0, CHUNK), wrongMd5)
      .catch((e) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ status: 400, code: 'checksum_mismatch' });

    // Aborting rejects with the signal's reason, as fetch does.
    const controller = new AbortController();
    const reason = new DOMException('stopped by the test', 'AbortError');
    const pending = api.putChunk(session.uploadId, 0, other.subarray(0, CHUNK), null, {
      signal: controller.signal,
    });
    controller.abort(reason);
    const aborted = await pending.catch((e) => e);
    expect(isAbortError(aborted)).toBe(true);

    // No server: a NetworkError, not a crash.
    const nowhere = new DfsApi({
      baseUrl: 'http://127.0.0.1:9',
      token,
      credentials: 'omit',
      fetch: nodeFetch,
    });
    const unreachable = await nowhere.putChunk(session.uploadId, 0, other.subarray(0, 10)).catch((e) => e);
    expect(unreachable).toBeInstanceOf(NetworkError);
    await api.abortUpload(session.uploadId);
  });

  it("the CLI's Node fetch sends forms through undici: one-request and batch uploads, names kept", async () => {
    const api = new DfsApi({ baseUrl, token: alice.token, credentials: 'omit', fetch: nodeFetch });
    const one = random(300_000);
    const name = 'résumé "final" 报告\\x.bin';
    const { file } = await api.uploadSimple(new Blob([one]), { name, sha1: sha1(one) });
    expect(file).toMatchObject({ name, size: one.length, sha1: sha1(one) });
    expect(sha1(Buffer.from(await (await api.download(file.id)).arrayBuffer()))).toBe(sha1(one));

    const files = [random(10), random(70_000), random(0)];
    const batch = await api.uploadBatch(
      files.map((bytes, i) => ({ blob: new Blob([bytes]), name: `batch-${i}.bin`, sha1: sha1(bytes) })),
    );
    expect(batch.files.map((f) => [f.name, f.sha1])).toEqual(
      files.map((bytes, i) => [`batch-${i}.bin`, sha1(bytes)]),
    );

    // The server's verdict on the bytes still comes back as a typed error.
    const lie = await api
      .uploadSimple(new Blob([random(1000)]), { name: 'lie.bin', sha1: sha1(one) })
      .catch((e) => e);
    expect(lie).toBeInstanceOf(ApiError);
    expect(lie).toMatchObject({ status: 422, code: 'hash_mismatch' });
  });

  it.each([
    ['standard Files', 'standard.bin', {}],
    ["Node's held Files", 'held.bin', { fileFromBytes: nodeFileFromBytes }],
  ])(
    "the Node fetch sends a small file's bytes as the upload core read them, never reading a Blob back (%s)",
    async (_label, name, options) => {
      const api = new DfsApi({ baseUrl, token: alice.token, credentials: 'omit', fetch: nodeFetch });
      const bytes = random(200_000);
      const reads = [vi.spyOn(Blob.prototype, 'arrayBuffer'), vi.spyOn(Blob.prototype, 'stream')];
      try {
        const upload = new Upload(fileSourceFromBytes(bytes, name), {
          transport: api,
          hasher: nodeHasher,
          hashFile: nodeHashFile,
          ...options,
        });
        upload.start();
        const file = await upload.result();
        expect(file).toMatchObject({ name, size: bytes.length, sha1: sha1(bytes) });
        for (const read of reads) expect(read).not.toHaveBeenCalled();
      } finally {
        for (const read of reads) read.mockRestore();
      }
    },
  );

  it("held Files also go through Node's own fetch whole, alone and in batches", async () => {
    const queue = new UploadQueue({ transport: alice, ...nodeUploadOptions, autoStart: false });
    const files = [random(70_000), random(3), random(1_500_000)];
    const uploads = files.map((data, i) => queue.add(fileSourceFromBytes(data, `held-${i}.bin`)));
    const single = new Upload(fileSourceFromBytes(files[2]!.subarray(1), 'held-alone.bin'), {
      transport: alice,
      ...nodeUploadOptions,
    });
    queue.start();
    single.start();
    for (const [i, upload] of uploads.entries()) {
      expect(await upload.result()).toMatchObject({ size: files[i]!.length, sha1: sha1(files[i]!) });
    }
    expect(await single.result()).toMatchObject({ sha1: sha1(files[2]!.subarray(1)) });
  });
});
