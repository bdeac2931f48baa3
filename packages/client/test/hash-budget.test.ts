/**
 * The client's hash budget (ARCHITECTURE.md): one SHA-1 pass over every byte of a file, one
 * CRC-32C per chunk sent, no MD5 at all, on every path of the engine. The bytes are counted
 * where they enter the hash libraries themselves (node:crypto's createHash, hash-wasm,
 * @node-rs/crc32, WebCrypto), which pass everything through unchanged, so a hash taken anywhere
 * in the client is counted, whichever module takes it. The fake server hashes with node:crypto's
 * one-shot `hash` and SheetJS, which are not counted.
 */
import { hash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createWasmHasher,
  DfsApi,
  type FileSource,
  fileSourceFromBlob,
  fileSourceFromBytes,
  HASH_PIECE_SIZE,
  type Hasher,
  runHashWorker,
  Upload,
  type UploadOptions,
  UploadQueue,
  WorkerHashPool,
  type WorkerLike,
} from '../src/index.ts';
import { nodeHasher, nodeHashFile } from '../src/node/index.ts';
import { FakeTransport } from './fake-transport.ts';

/** Bytes hashed per algorithm since the last reset. */
const hashed = vi.hoisted(() => {
  const counts = { sha1: 0, crc32c: 0, md5: 0, other: 0 };
  const add = (algorithm: string, data: unknown) => {
    const n = typeof data === 'string' ? 0 : ArrayBuffer.isView(data) ? data.byteLength : 0;
    const key = algorithm.toLowerCase().replace('-', '') as keyof typeof counts;
    counts[key in counts ? key : 'other'] += n;
  };
  const reset = () => {
    for (const k of Object.keys(counts) as (keyof typeof counts)[]) counts[k] = 0;
  };
  return { counts, add, reset };
});

vi.mock('node:crypto', async (importOriginal) => {
  const orig = await importOriginal<typeof import('node:crypto')>();
  const createHash = ((algorithm: string, options?: object) => {
    const h = orig.createHash(algorithm, options as never);
    const update = h.update.bind(h);
    h.update = ((data: never, encoding: never) => {
      hashed.add(algorithm, data);
      return update(data, encoding);
    }) as typeof h.update;
    return h;
  }) as typeof orig.createHash;
  return { ...orig, default: { ...orig, createHash }, createHash };
});

vi.mock('hash-wasm', async (importOriginal) => {
  const orig = await importOriginal<typeof import('hash-wasm')>();
  type IHasher = Awaited<ReturnType<typeof orig.createSHA1>>;
  const counted = (algorithm: string, h: IHasher): IHasher => {
    const w: IHasher = {
      ...h,
      init: () => {
        h.init();
        return w;
      },
      update: (data) => {
        hashed.add(algorithm, data);
        h.update(data);
        return w;
      },
    };
    return w;
  };
  return {
    ...orig,
    createSHA1: async () => counted('sha1', await orig.createSHA1()),
    createMD5: async () => counted('md5', await orig.createMD5()),
    createCRC32: async (polynomial?: number) =>
      counted(polynomial === 0x82f63b78 ? 'crc32c' : 'crc32', await orig.createCRC32(polynomial)),
  };
});

vi.mock('@node-rs/crc32', async (importOriginal) => {
  const orig = await importOriginal<typeof import('@node-rs/crc32')>();
  return {
    ...orig,
    crc32c: (input: Uint8Array | string, initial?: number) => {
      hashed.add('crc32c', input);
      return orig.crc32c(input, initial);
    },
  };
});

const CHUNK = HASH_PIECE_SIZE;
/** Two full chunks and a short one: 8 MiB is the server's chunk size and the hashing piece size. */
const BIG = 2 * CHUNK + 12_345;
const big = new Uint8Array(randomBytes(BIG));
const sha1 = (b: Uint8Array) => hash('sha1', b, 'hex');

const realDigest = globalThis.crypto.subtle.digest.bind(globalThis.crypto.subtle);
beforeEach(() => {
  vi.spyOn(globalThis.crypto.subtle, 'digest').mockImplementation((algorithm, data) => {
    hashed.add(typeof algorithm === 'string' ? algorithm : algorithm.name, data);
    return realDigest(algorithm, data);
  });
  hashed.reset();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const ports: MessagePort[] = [];
afterAll(() => {
  for (const p of ports) p.close();
});

/** The web app's setup: a pool of hash workers (in-process ports running the real worker code). */
function webOptions(workers: number): Partial<UploadOptions> {
  const pool = new WorkerHashPool(
    Array.from({ length: workers }, () => {
      const { port1, port2 } = new MessageChannel();
      ports.push(port1, port2);
      runHashWorker(port2 as never, { hasher: createWasmHasher() });
      port2.start();
      return port1 as unknown as WorkerLike;
    }),
  );
  return {
    hashFile: pool.hashFile,
    sha1OfBlob: (b) => pool.sha1OfBlob(b),
    crc32cOfBlob: (b) => pool.crc32cOfBlob(b),
    proofOfBlob: (nonce, range) => pool.proofOfBlob(nonce, range),
  };
}

/** The CLI's setup: node:crypto and @node-rs/crc32 on its own thread. */
const cliOptions: Partial<UploadOptions> = { hasher: nodeHasher, hashFile: nodeHashFile };

async function upload(source: FileSource, transport: FakeTransport, options: Partial<UploadOptions>) {
  const u = new Upload(source, { transport, parallelism: 3, ...options });
  u.start();
  const file = await u.result();
  return { file, snapshot: u.snapshot() };
}

function expectChunksChecked(transport: FakeTransport, data: Uint8Array) {
  const puts = transport.calls.filter((c) => c.startsWith('putChunk'));
  expect(puts).toHaveLength(Math.ceil(data.length / CHUNK));
  for (const [, checksum] of transport.checksums) expect(checksum).toEqual({ crc32c: expect.any(Number) });
}

const blobOf = (d: Uint8Array) => fileSourceFromBlob(new Blob([d as Uint8Array<ArrayBuffer>]), 'big.bin');
const setups: [string, () => Partial<UploadOptions>, (d: Uint8Array) => FileSource][] = [
  ['CLI', () => cliOptions, (d) => fileSourceFromBytes(d, 'big.bin')],
  ['web app, 1 hash worker', () => webOptions(1), blobOf],
  ['web app, 2 hash workers', () => webOptions(2), blobOf],
];

describe.each(setups)('hash passes per byte: %s', (name, options, sourceOf) => {
  const web = name.startsWith('web');

  it('chunked (hash first): SHA-1 once, CRC-32C once, MD5 never', async () => {
    const transport = new FakeTransport(CHUNK);
    const { file } = await upload(sourceOf(big), transport, { ...options(), smallFileLimit: -1 });
    expect(file.sha1).toBe(sha1(big));
    expect(hashed.counts).toEqual({ sha1: BIG, crc32c: BIG, md5: 0, other: 0 });
    expectChunksChecked(transport, big);
    // a browser file's chunks go as slices of its Blob, never as bytes read here
    expect(transport.blobPuts).toBe(web ? 3 : 0);
  });

  it('speculative (sent while hashing): SHA-1 once, CRC-32C once, MD5 never', async () => {
    const transport = new FakeTransport(CHUNK);
    const { file, snapshot } = await upload(sourceOf(big), transport, {
      ...options(),
      smallFileLimit: -1,
      speculativeThreshold: 0,
    });
    expect(snapshot.route).toBe('speculative');
    expect(file.sha1).toBe(sha1(big));
    expect(hashed.counts).toEqual({ sha1: BIG, crc32c: BIG, md5: 0, other: 0 });
    expectChunksChecked(transport, big);
    expect(transport.blobPuts).toBe(web ? 3 : 0);
  });

  it('a known SHA-1 (resumed): no SHA-1 pass, CRC-32C once while sending', async () => {
    const transport = new FakeTransport(CHUNK);
    const { file } = await upload(sourceOf(big), transport, {
      ...options(),
      smallFileLimit: -1,
      sha1: sha1(big),
    });
    expect(file.sha1).toBe(sha1(big));
    expect(hashed.counts).toEqual({ sha1: 0, crc32c: BIG, md5: 0, other: 0 });
    expectChunksChecked(transport, big);
  });

  it('instant (a challenge answered): the pass, then the proof over its range only', async () => {
    const transport = new FakeTransport(CHUNK);
    transport.stored.set(sha1(big), big);
    // the page's own hasher: in the web app a proof is taken in a worker, never with it
    let pageHashes = 0;
    const wasm = await createWasmHasher();
    const pageHasher: Hasher = {
      ...wasm,
      createSha1: () => {
        pageHashes++;
        return wasm.createSha1();
      },
    };
    const { file, snapshot } = await upload(sourceOf(big), transport, {
      ...(web ? { hasher: pageHasher } : {}),
      ...options(),
      smallFileLimit: -1,
    });
    expect(snapshot.instant).toBe(true);
    expect(file.sha1).toBe(sha1(big));
    expect(transport.calls).toEqual(['createUpload', 'createUpload+proof']);
    const [challenge] = [...transport.challenges.values()];
    expect(challenge).toBeUndefined(); // answered, so spent
    const proofBytes = 36 + 100; // the fake server's nonce (a UUID) and range
    expect(hashed.counts).toEqual({ sha1: BIG + proofBytes, crc32c: BIG, md5: 0, other: 0 });
    if (web) expect(pageHashes).toBe(0);
  });

  it('one request: SHA-1 once, nothing else', async () => {
    const small = new Uint8Array(randomBytes(3 * 1024 * 1024 + 7)); // above the batch limit
    const transport = new FakeTransport(CHUNK, { simple: true });
    const source = sourceOf(small);
    const { file, snapshot } = await upload(source, transport, options());
    expect(snapshot.route).toBe('small');
    expect(file.sha1).toBe(sha1(small));
    expect(transport.calls).toEqual(['uploadSimple']);
    expect(hashed.counts).toEqual({ sha1: small.length, crc32c: 0, md5: 0, other: 0 });
    // a browser file goes as its own Blob, not as a new one made of bytes read here
    if (web) {
      expect(transport.sentBlobs).toHaveLength(1);
      expect(transport.sentBlobs[0]).toBe(source.blob);
    }
  });

  it('batches of small files: SHA-1 once per byte, nothing else', async () => {
    const transport = new FakeTransport(CHUNK, { simple: true });
    const queue = new UploadQueue({ transport, ...options() });
    const files = Array.from({ length: 5 }, (_, i) => new Uint8Array(randomBytes(10_000 + i)));
    const sources = files.map(sourceOf);
    const done = await Promise.all(sources.map((s, i) => queue.add(s, { name: `s${i}` }).result()));
    expect(done.map((f) => f.sha1)).toEqual(files.map(sha1));
    if (web) for (const sent of transport.sentBlobs) expect(sources.map((s) => s.blob)).toContain(sent);
    expect(transport.calls.filter((c) => c === 'uploadBatch').length).toBeGreaterThan(0);
    const bytes = files.reduce((n, f) => n + f.length, 0);
    expect(hashed.counts).toEqual({ sha1: bytes, crc32c: 0, md5: 0, other: 0 });
  });
});

describe('a chunk PUT on the wire', () => {
  const seen: { headers: http.IncomingHttpHeaders; body: Buffer }[] = [];
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(parts) });
      res.writeHead(204).end();
    });
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('carries its CRC-32C in Content-Digest (RFC 9530), and a Blob body as it is', async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const api = new DfsApi({
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      token: 't',
      credentials: 'omit',
    });
    const check = new TextEncoder().encode('123456789');
    await api.putChunk('u1', 0, check, { crc32c: nodeHasher.crc32c(check) });
    await api.putChunk('u1', 1, new Blob([check]).slice(2, 5), { crc32c: 1 });
    await api.putChunk('u1', 2, check, 'q83vEjRWeJq83vEjRWeJqw==');
    expect(seen[0]?.headers['content-digest']).toBe('crc32c=:4waSgw==:'); // e3069283
    expect(seen[0]?.headers['content-md5']).toBeUndefined();
    expect(seen[0]?.body.toString()).toBe('123456789');
    expect(seen[1]?.headers['content-digest']).toBe('crc32c=:AAAAAQ==:');
    expect(seen[1]?.body.toString()).toBe('345');
    // a Content-MD5 the caller computed itself still goes as one
    expect(seen[2]?.headers['content-md5']).toBe('q83vEjRWeJq83vEjRWeJqw==');
    expect(seen[2]?.headers['content-digest']).toBeUndefined();
  });
});
