/**
 * The engine's logic against an in-memory transport (no HTTP, no timers: sleeps are recorded,
 * the clock is fixed). Integration against the real server lives with the server's tests.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import {
  CanceledError,
  fileSourceFromBlob,
  fileSourceFromBytes,
  HASH_PIECE_SIZE,
  type Hasher,
  type HashFileFn,
  hashSource,
  MemoryResumeStore,
  Upload,
  type UploadOptions,
  UploadQueue,
  type UploadState,
} from '../src/index.ts';
import { fileSourceFromPath, nodeHasher, nodeHashFile } from '../src/node/index.ts';
import { apiError, FakeTransport } from './fake-transport.ts';

const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');

function setup(
  size: number,
  opts: Partial<UploadOptions> = {},
  chunkSize = 1024,
  transportOpts: { simple?: boolean } = {},
) {
  const data = new Uint8Array(randomBytes(size));
  const source = fileSourceFromBytes(data, 'data.bin', 1_700_000_000_000);
  const transport = new FakeTransport(chunkSize, transportOpts);
  const slept: number[] = [];
  let hashCalls = 0;
  const hashFile: HashFileFn = (s, o) => {
    hashCalls++;
    return nodeHashFile(s, o);
  };
  const upload = new Upload(source, {
    transport,
    hashFile,
    hasher: nodeHasher,
    sleep: async (ms) => void slept.push(ms),
    now: () => 0,
    parallelism: 1,
    ...opts,
  });
  const states: UploadState[] = [upload.state];
  upload.on('state', (s) => states.push(s.state));
  return { data, source, transport, upload, states, slept, hashCalls: () => hashCalls };
}

/** Makes putChunk(index) hang until its request is aborted; resolves `reached` when it gets there. */
function hangAt(transport: FakeTransport, index: number) {
  let reached!: () => void;
  const p = new Promise<void>((r) => {
    reached = r;
  });
  transport.beforePut = (i, signal) => {
    if (i !== index) return Promise.resolve();
    reached();
    return new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason)));
  };
  return p;
}

describe('Upload', () => {
  it('hashes, creates a session, sends every chunk with its CRC-32C and completes', async () => {
    const { data, transport, upload, states } = setup(5 * 1024 + 100, { parallelism: 3 });
    upload.start();
    const file = await upload.result();
    expect(file.sha1).toBe(sha1(data));
    expect(states).toEqual(['queued', 'hashing', 'checking', 'uploading', 'completing', 'done']);
    const puts = transport.calls.filter((c) => c.startsWith('putChunk')).sort();
    expect(puts).toEqual([0, 1, 2, 3, 4, 5].map((i) => `putChunk ${i}`));
    for (let i = 0; i < 6; i++) {
      expect(transport.checksums.get(i)).toEqual({ crc32c: crc32c(data.subarray(i * 1024, (i + 1) * 1024)) });
    }
    const s = upload.snapshot();
    expect(s).toMatchObject({ bytesHashed: data.length, bytesUploaded: data.length, sentBytes: data.length });
    expect(s).toMatchObject({ instant: false, chunksDone: 6, chunkCount: 6, eta: 0, state: 'done' });
    expect(transport.stored.get(sha1(data))).toEqual(data);
  });

  it('takes chunk CRCs from the hashing pass when the server chunk size is the piece size', async () => {
    let crcCalls = 0;
    const countingHasher: Hasher = {
      ...nodeHasher,
      crc32c: (b) => {
        crcCalls++;
        return nodeHasher.crc32c(b);
      },
    };
    const { upload, transport } = setup(
      HASH_PIECE_SIZE + 10,
      { hasher: countingHasher, hashFile: (s, o) => hashSource(s, countingHasher, o) },
      HASH_PIECE_SIZE,
    );
    upload.start();
    await upload.result();
    expect(crcCalls).toBe(2); // one per piece in the hashing pass; none again while sending
    expect(transport.calls.filter((c) => c.startsWith('putChunk'))).toHaveLength(2);
  });

  it('uploads an empty file', async () => {
    const { upload, transport } = setup(0);
    upload.start();
    const file = await upload.result();
    expect(file.size).toBe(0);
    expect(transport.calls).toEqual(['createUpload', 'completeUpload']);
  });

  it('answers a challenge with a proof and finishes instantly without sending bytes', async () => {
    const { data, upload, transport, states } = setup(4000);
    transport.stored.set(sha1(data), data);
    upload.start();
    const file = await upload.result();
    expect(file.sha1).toBe(sha1(data));
    expect(transport.calls).toEqual(['createUpload', 'createUpload+proof']);
    expect(states).toEqual(['queued', 'hashing', 'checking', 'done']);
    expect(upload.snapshot()).toMatchObject({ instant: true, sentBytes: 0, bytesUploaded: 4000 });
  });

  it('asks for a fresh challenge once when a proof is refused', async () => {
    const { data, upload, transport } = setup(4000);
    transport.stored.set(sha1(data), data);
    transport.failures.createUpload = [undefined, apiError(403, 'proof_failed')];
    upload.start();
    await upload.result();
    expect(transport.calls).toEqual([
      'createUpload',
      'createUpload+proof',
      'createUpload',
      'createUpload+proof',
    ]);
  });

  it('retries a chunk on 5xx with the schedule, and gives up on a fatal 4xx', async () => {
    const a = setup(3000);
    a.transport.failures.putChunk = [apiError(503, 'storage_unavailable'), apiError(500, 'internal')];
    const retries: number[] = [];
    a.upload.on('retry', (r) => retries.push(r.delayMs));
    a.upload.start();
    await a.upload.result();
    expect(a.slept).toEqual([0, 1000]);
    expect(retries).toEqual([0, 1000]);
    expect(a.upload.snapshot().retries).toBe(2);

    const b = setup(3000);
    b.transport.failures.putChunk = [apiError(400, 'bad_chunk_size')];
    b.upload.start();
    await expect(b.upload.result()).rejects.toMatchObject({ code: 'bad_chunk_size' });
    expect(b.upload.state).toBe('error');
    expect(b.upload.snapshot().error).toMatchObject({ code: 'bad_chunk_size', status: 400 });
    expect(b.slept).toEqual([]);
    // retry() picks up where the server is
    b.upload.retry();
    await b.upload.result();
    expect(b.transport.calls).toContain('getUpload');
  });

  it('retries checksum_mismatch once only', async () => {
    const { upload, transport } = setup(3000);
    transport.failures.putChunk = [apiError(400, 'checksum_mismatch'), apiError(400, 'checksum_mismatch')];
    upload.start();
    await expect(upload.result()).rejects.toMatchObject({ code: 'checksum_mismatch' });
    expect(transport.calls.filter((c) => c === 'putChunk 0')).toHaveLength(2);
  });

  it('pauses by aborting in-flight chunks and resumes from the chunks the server holds', async () => {
    const { upload, transport, states } = setup(5000);
    const reached = hangAt(transport, 2);
    upload.start();
    await reached;
    upload.pause();
    expect(upload.state).toBe('paused');
    transport.beforePut = null;
    transport.calls.length = 0;
    upload.resume();
    await upload.result();
    expect(transport.calls).toEqual([
      'getUpload',
      'putChunk 2',
      'putChunk 3',
      'putChunk 4',
      'completeUpload',
    ]);
    expect(states).toEqual([
      'queued',
      'hashing',
      'checking',
      'uploading',
      'paused',
      'queued',
      'checking',
      'uploading',
      'completing',
      'done',
    ]);
    // chunks 0 and 1 were sent before the pause, 2–4 after; none counted twice
    expect(upload.snapshot()).toMatchObject({ sentBytes: 5000, bytesUploaded: 5000 });
  });

  it('cancel aborts, deletes the session and rejects with CanceledError', async () => {
    const store = new MemoryResumeStore();
    const { upload, transport } = setup(5000, { resumeStore: store });
    const reached = hangAt(transport, 1);
    upload.start();
    const result = upload.result();
    await reached;
    expect(store.entries.size).toBe(1);
    await upload.cancel();
    await expect(result).rejects.toBeInstanceOf(CanceledError);
    expect(upload.state).toBe('canceled');
    expect(transport.calls.at(-1)).toBe('abortUpload');
    expect(transport.sessions.size).toBe(0);
    expect(store.entries.size).toBe(0);
  });

  it('resumes from the resume store without hashing again', async () => {
    const store = new MemoryResumeStore();
    const first = setup(5000, { resumeStore: store });
    const reached = hangAt(first.transport, 3);
    first.upload.start();
    await reached;
    first.upload.pause();
    const [entry] = store.entries.values();
    expect(entry).toMatchObject({ sha1: sha1(first.data), size: 5000, name: 'data.bin' });
    expect(entry?.uploadId).toBeTruthy();

    // a new page load: same file, new Upload object, same store and server
    first.transport.beforePut = null;
    first.transport.calls.length = 0;
    let hashed = 0;
    const again = new Upload(first.source, {
      transport: first.transport,
      hasher: nodeHasher,
      resumeStore: store,
      parallelism: 1,
      hashFile: async (s, o) => {
        hashed++;
        return nodeHashFile(s, o);
      },
    });
    const states: UploadState[] = [];
    again.on('state', (s) => states.push(s.state));
    again.start();
    await again.result();
    expect(hashed).toBe(0);
    expect(states[0]).toBe('checking');
    expect(first.transport.calls).toEqual(['getUpload', 'putChunk 3', 'putChunk 4', 'completeUpload']);
    expect(store.entries.size).toBe(0);
  });

  it('resumes a speculative upload after a reload: the same session, only the missing chunks', async () => {
    const store = new MemoryResumeStore();
    const first = setup(5000, { resumeStore: store, speculativeThreshold: 4000 });
    const reached = hangAt(first.transport, 3);
    first.upload.start();
    await reached;
    first.upload.pause();
    const [entry] = store.entries.values();
    expect(entry?.uploadId).toBeTruthy();
    const session = first.transport.sessions.get(entry?.uploadId as string);
    expect(session?.sha1).toBeNull(); // opened without a sha1

    first.transport.beforePut = null;
    first.transport.calls.length = 0;
    const again = new Upload(first.source, {
      transport: first.transport,
      hasher: nodeHasher,
      hashFile: nodeHashFile,
      resumeStore: store,
      speculativeThreshold: 4000,
      parallelism: 1,
    });
    again.start();
    const file = await again.result();
    expect(file.sha1).toBe(sha1(first.data));
    expect(first.transport.calls[0]).toBe('getUpload');
    const puts = first.transport.calls.filter((c) => c.startsWith('putChunk'));
    expect(puts).toEqual(['putChunk 3', 'putChunk 4']);
    expect(first.transport.calls.at(-1)).toBe('completeUpload');
    expect(again.snapshot()).toMatchObject({ route: 'speculative', uploadId: entry?.uploadId });
  });

  it('hashes again when a remembered sha1 turns out to be stale', async () => {
    const store = new MemoryResumeStore();
    const { upload, source, transport, hashCalls } = setup(3000, { resumeStore: store });
    await store.set(upload.fingerprint, {
      sha1: '0'.repeat(40),
      uploadId: null,
      size: source.size,
      name: source.name,
    });
    upload.start();
    const file = await upload.result();
    expect(hashCalls()).toBe(1);
    expect(file.sha1).not.toBe('0'.repeat(40));
    expect(transport.calls.filter((c) => c === 'completeUpload')).toHaveLength(2);
  });

  it('re-sends the chunks complete reports missing', async () => {
    const { upload, transport } = setup(3000);
    transport.failures.completeUpload = [apiError(409, 'incomplete', { missing: [1] })];
    upload.start();
    await upload.result();
    expect(transport.calls.filter((c) => c === 'putChunk 1')).toHaveLength(2);
  });

  it('starts a new session when the old one is gone', async () => {
    const { upload, transport } = setup(3000);
    transport.failures.putChunk = [undefined, apiError(404, 'not_found')];
    upload.start();
    await upload.result();
    expect(transport.calls.filter((c) => c === 'createUpload')).toHaveLength(2);
  });

  it('reports an unreadable file as an error', async () => {
    const { upload, source } = setup(3000);
    Object.assign(source, { slice: async () => new Uint8Array(5) });
    upload.start();
    await expect(upload.result()).rejects.toThrow(/changed while reading/);
    expect(upload.state).toBe('error');
  });
});

describe('Upload routes', () => {
  it('sends a small file in one request that carries its sha1', async () => {
    const { data, upload, transport, states } = setup(3000, {}, 1024, { simple: true });
    upload.start();
    const file = await upload.result();
    expect(file).toMatchObject({ sha1: sha1(data), size: 3000, name: 'data.bin' });
    expect(transport.calls).toEqual(['uploadSimple']);
    expect(states).toEqual(['queued', 'uploading', 'done']);
    expect(upload.snapshot()).toMatchObject({ route: 'small', sentBytes: 3000, bytesUploaded: 3000 });
  });

  it('hands a small Blob to sha1OfBlob and sends that same Blob, never reading it here', async () => {
    const data = new Uint8Array(randomBytes(2000));
    const blob = new Blob([data]);
    const source = fileSourceFromBlob(blob, 'blob.bin');
    let reads = 0;
    const counted = {
      ...source,
      slice: (a: number, b: number) => {
        reads++;
        return source.slice(a, b);
      },
    };
    const transport = new FakeTransport(1024, { simple: true });
    const sent: Blob[] = [];
    const simple = transport.uploadSimple!;
    const spy = Object.assign(Object.create(transport), {
      uploadSimple: (b: Blob, o: object) => {
        sent.push(b);
        return simple(b, o);
      },
    });
    const hashed: Blob[] = [];
    const upload = new Upload(counted, {
      transport: spy,
      sha1OfBlob: async (b) => {
        hashed.push(b);
        return sha1(new Uint8Array(await b.arrayBuffer()));
      },
    });
    upload.start();
    expect((await upload.result()).sha1).toBe(sha1(data));
    expect(hashed).toEqual([blob]);
    expect(sent[0]).toBe(blob);
    expect(reads).toBe(0);
  });

  it('keeps big files (and every file when turned off) on the chunked path', async () => {
    const big = setup(70 * 1024, { smallFileLimit: 64 * 1024 }, 1024, { simple: true });
    big.upload.start();
    await big.upload.result();
    expect(big.transport.calls).not.toContain('uploadSimple');
    const off = setup(3000, { smallFileLimit: -1 }, 1024, { simple: true });
    off.upload.start();
    await off.upload.result();
    expect(off.transport.calls[0]).toBe('createUpload');
    expect(off.transport.calls).not.toContain('uploadSimple');
  });

  it('speculative: sends chunks before the hash is known, then completes with the sha1', async () => {
    const { data, upload, transport } = setup(6000, { speculativeThreshold: 5000, parallelism: 2 });
    let hashDoneAt = -1;
    upload.on('progress', (s) => {
      if (hashDoneAt < 0 && s.sha1) hashDoneAt = transport.calls.length;
    });
    upload.start();
    const file = await upload.result();
    expect(file.sha1).toBe(sha1(data));
    expect(transport.calls[0]).toBe('createUpload');
    // The session was opened without a sha1, and the instant check afterwards made a second one
    // that the client deleted at once.
    const complete = transport.calls.indexOf('completeUpload');
    expect(complete).toBeGreaterThan(0);
    expect(transport.calls.filter((c) => c === 'createUpload')).toHaveLength(2);
    expect(transport.calls).toContain('abortUpload');
    expect([...transport.sessions.values()].filter((s) => !s.file)).toHaveLength(0);
    expect(upload.snapshot()).toMatchObject({ route: 'speculative', instant: false, sentBytes: 6000 });
    expect(transport.stored.get(sha1(data))).toEqual(data);
  });

  it('speculative upload of known content: proves ownership, stops sending, deletes the session', async () => {
    const { data, upload, transport } = setup(6000, { speculativeThreshold: 5000, parallelism: 1 });
    transport.stored.set(sha1(data), data);
    // Chunk 2 never lands: only finding the content can finish this upload.
    void hangAt(transport, 2);
    upload.start();
    const file = await upload.result();
    expect(file.sha1).toBe(sha1(data));
    expect(transport.calls).toContain('createUpload+proof');
    expect(transport.calls).toContain('abortUpload');
    expect(transport.calls).not.toContain('completeUpload');
    expect(transport.calls.filter((c) => c.startsWith('putChunk')).length).toBeLessThan(6);
    expect(transport.sessions.size).toBe(0);
    expect(upload.snapshot()).toMatchObject({ state: 'done', instant: true });
  });

  it('waits while complete answers upload_busy, without sending any chunk again', async () => {
    const { upload, transport, slept } = setup(3000);
    transport.failures.completeUpload = [
      apiError(409, 'upload_busy', { retryAfter: 2 }),
      apiError(409, 'upload_busy', { retryAfter: 2 }),
    ];
    const verifying: boolean[] = [];
    upload.on('progress', (s) => verifying.push(s.verifying));
    upload.start();
    await upload.result();
    expect(transport.calls.filter((c) => c === 'completeUpload')).toHaveLength(3);
    expect(transport.calls.filter((c) => c.startsWith('putChunk'))).toHaveLength(3);
    expect(slept.filter((ms) => ms >= 2000).length).toBeGreaterThanOrEqual(2);
    expect(verifying).toContain(true);
    expect(upload.snapshot().verifying).toBe(false);
  });
});

describe('a file on disk', () => {
  it.each([
    ['chunked', Number.POSITIVE_INFINITY],
    ['speculative', 0],
  ])(
    '%s: chunks are read into a few reused buffers, each sent whole and right',
    async (_route, threshold) => {
      const dir = await mkdtemp(join(tmpdir(), 'dfs-client-'));
      try {
        // chunks above Node's 4 KiB Buffer pool, so that each fresh read is memory of its own
        const data = new Uint8Array(randomBytes(9 * 16_384 + 100));
        await writeFile(join(dir, 'f.bin'), data);
        const transport = new FakeTransport(16_384);
        const upload = new Upload(await fileSourceFromPath(join(dir, 'f.bin')), {
          transport,
          hasher: nodeHasher,
          hashFile: nodeHashFile,
          parallelism: 3,
          speculativeThreshold: threshold,
        });
        upload.start();
        // complete checks the SHA-1 of what was stored, each PUT its CRC: a buffer read into again
        // before its chunk went out would fail one or the other
        expect((await upload.result()).sha1).toBe(sha1(data));
        expect(transport.calls.filter((c) => c.startsWith('putChunk'))).toHaveLength(10);
        expect(transport.bodyBuffers.size).toBeLessThanOrEqual(3);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('small files in batches', () => {
  it('a queue sends a folder of small files in a few batch requests', async () => {
    const transport = new FakeTransport(1024, { simple: true });
    const queue = new UploadQueue({
      transport,
      hasher: nodeHasher,
      hashFile: nodeHashFile,
      sleep: async () => {},
    });
    const files = Array.from({ length: 40 }, (_, i) => new Uint8Array(randomBytes(100 + i)));
    const uploads = files.map((data, i) => queue.add(fileSourceFromBytes(data, `f${i}.txt`)));
    const done = await Promise.all(uploads.map((u) => u.result()));
    expect(done.map((f) => f.sha1)).toEqual(files.map(sha1));
    expect(done.map((f) => f.name)).toEqual(files.map((_, i) => `f${i}.txt`));
    expect(transport.calls.every((c) => c === 'uploadBatch')).toBe(true);
    expect(transport.batchSizes.reduce((a, b) => a + b, 0)).toBe(40);
    expect(transport.batchSizes.length).toBeLessThanOrEqual(4);
    expect(uploads.every((u) => u.snapshot().route === 'small')).toBe(true);
  });

  it('a batch refused for one file is sent again one request per file, so the others get through', async () => {
    const transport = new FakeTransport(1024, { simple: true });
    transport.failures.uploadBatch = [apiError(422, 'hash_mismatch', { index: 2 })];
    const queue = new UploadQueue({
      transport,
      hasher: nodeHasher,
      hashFile: nodeHashFile,
      sleep: async () => {},
    });
    const files = Array.from({ length: 5 }, () => new Uint8Array(randomBytes(300)));
    const uploads = files.map((data, i) => queue.add(fileSourceFromBytes(data, `g${i}.txt`)));
    await Promise.all(uploads.map((u) => u.result()));
    expect(transport.batchSizes).toEqual([5]);
    expect(transport.calls.filter((c) => c === 'uploadSimple')).toHaveLength(5);
  });

  it('a transient batch failure is retried by each upload', async () => {
    const transport = new FakeTransport(1024, { simple: true });
    transport.failures.uploadBatch = [apiError(503, 'storage_unavailable')];
    const slept: number[] = [];
    const queue = new UploadQueue({
      transport,
      hasher: nodeHasher,
      hashFile: nodeHashFile,
      sleep: async (ms) => void slept.push(ms),
    });
    const files = Array.from({ length: 3 }, () => new Uint8Array(randomBytes(300)));
    const uploads = files.map((data, i) => queue.add(fileSourceFromBytes(data, `h${i}.txt`)));
    expect((await Promise.all(uploads.map((u) => u.result()))).map((f) => f.sha1)).toEqual(files.map(sha1));
    expect(slept.length).toBeGreaterThanOrEqual(3);
    expect(transport.stored.size).toBe(3);
  });
});

describe('UploadQueue', () => {
  it('runs files with bounded concurrency and aggregates totals', async () => {
    const transport = new FakeTransport(1024);
    const queue = new UploadQueue({
      transport,
      hashFile: nodeHashFile,
      hasher: nodeHasher,
      concurrency: 2,
      sleep: async () => {},
    });
    let maxActive = 0;
    queue.on('totals', (t) => {
      maxActive = Math.max(maxActive, t.active);
    });
    const files = [3000, 0, 4100, 1].map((n, i) =>
      fileSourceFromBytes(new Uint8Array(randomBytes(n)), `f${i}`),
    );
    // the second copy of f0 is stored by then: instant
    const ups = files.map((f) => queue.add(f, { parentId: 'folder1' }));
    await queue.idle();
    const dup = queue.add(files[0]!);
    await queue.idle();
    expect(ups.map((u) => u.state)).toEqual(['done', 'done', 'done', 'done']);
    expect(dup.snapshot().instant).toBe(true);
    expect(maxActive).toBeLessThanOrEqual(2);
    const t = queue.totals();
    expect(t).toMatchObject({ files: 5, done: 5, failed: 0, active: 0, instant: 1 });
    expect(t.bytesTotal).toBe(3000 + 0 + 4100 + 1 + 3000);
    expect(t.bytesUploaded).toBe(t.bytesTotal);
    expect(t.sentBytes).toBe(3000 + 4100 + 1);
    queue.clearFinished();
    expect(queue.list()).toHaveLength(0);
  });

  it('pauses and resumes everything', async () => {
    const transport = new FakeTransport(1024);
    const queue = new UploadQueue({ transport, hashFile: nodeHashFile, hasher: nodeHasher, concurrency: 1 });
    const reached = hangAt(transport, 1);
    const a = queue.add(fileSourceFromBytes(new Uint8Array(randomBytes(3000)), 'a'));
    const b = queue.add(fileSourceFromBytes(new Uint8Array(randomBytes(3000)), 'b'));
    await reached;
    expect(b.state).toBe('queued');
    queue.pauseAll();
    expect([a.state, b.state]).toEqual(['paused', 'paused']);
    await queue.idle();
    transport.beforePut = null;
    queue.resumeAll();
    await queue.idle();
    expect([a.state, b.state]).toEqual(['done', 'done']);
  });
});
