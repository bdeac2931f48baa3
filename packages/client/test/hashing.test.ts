import { createHash, randomBytes } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { afterAll, describe, expect, it } from 'vitest';
import {
  crc32cDigestHeader,
  createHasher,
  createJsHasher,
  createWasmHasher,
  fileSourceFromBlob,
  fileSourceFromBytes,
  HASH_PIECE_SIZE,
  type Hasher,
  HashWorkerError,
  hashSource,
  hexToBase64,
  proofSha1,
  proveChallenge,
  runHashWorker,
  WorkerHashPool,
  type WorkerLike,
} from '../src/index.ts';
import { nodeHasher } from '../src/node/index.ts';

const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

function expectedPieces(data: Uint8Array, pieceSize: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < data.length; i += pieceSize) out.push(crc32c(data.subarray(i, i + pieceSize)));
  return out;
}

const backends: [string, () => Promise<Hasher>][] = [
  ['wasm', createWasmHasher],
  ['js', async () => createJsHasher()],
  ['node', async () => nodeHasher],
];

const PIECE = 1024;
const sizes = [0, 1, 63, 64, 65, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 17];

describe.each(backends)('%s backend', (_name, make) => {
  it.each(sizes)('hashSource agrees with node:crypto for %i bytes', async (size) => {
    const hasher = await make();
    const data = new Uint8Array(randomBytes(size));
    const progress: number[] = [];
    const d = await hashSource(fileSourceFromBytes(data, 'x'), hasher, {
      pieceSize: PIECE,
      onProgress: (n) => progress.push(n),
    });
    expect(d.sha1).toBe(sha1(data));
    expect(d.pieceSize).toBe(PIECE);
    expect(d.pieceCrc32cs).toEqual(expectedPieces(data, PIECE));
    expect(progress.at(-1) ?? 0).toBe(size);
  });

  it('uses 8 MiB pieces by default (exactly one piece, and one piece + 1 byte)', async () => {
    const hasher = await make();
    const data = new Uint8Array(randomBytes(HASH_PIECE_SIZE + 1));
    const one = await hashSource(fileSourceFromBytes(data.subarray(0, HASH_PIECE_SIZE), 'x'), hasher);
    expect(one.pieceCrc32cs).toEqual([crc32c(data.subarray(0, HASH_PIECE_SIZE))]);
    expect(one.sha1).toBe(sha1(data.subarray(0, HASH_PIECE_SIZE)));
    const two = await hashSource(fileSourceFromBytes(data, 'x'), hasher);
    expect(two.pieceCrc32cs).toEqual(expectedPieces(data, HASH_PIECE_SIZE));
    expect(two.sha1).toBe(sha1(data));
  });

  it('incremental updates at odd boundaries equal one-shot digests', async () => {
    const hasher = await make();
    const data = new Uint8Array(randomBytes(10_000));
    const s = await hasher.createSha1();
    let pos = 0;
    for (const n of [0, 1, 7, 55, 64, 65, 1000, 3333]) {
      s.update(data.subarray(pos, pos + n));
      pos += n;
    }
    s.update(data.subarray(pos));
    expect(s.digest()).toBe(sha1(data));
    expect(hasher.sha1(data)).toBe(sha1(data));
  });

  it('takes the CRC-32C (Castagnoli) of a chunk, unsigned', async () => {
    const hasher = await make();
    // The check value of CRC-32C (RFC 3720, B.4)
    expect(hasher.crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    expect(hasher.crc32c(new Uint8Array(0))).toBe(0);
    const data = new Uint8Array(randomBytes(100_003));
    // a view into a larger buffer reads only its own bytes
    expect(hasher.crc32c(data.subarray(3, 70_000))).toBe(crc32c(data.subarray(3, 70_000)));
    expect(hasher.crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
  });
});

describe('hashSource over a source that reads into buffers', () => {
  it('takes two buffers in turn and gets every digest right', async () => {
    const data = new Uint8Array(randomBytes(5 * PIECE + 3));
    const buffers = new Set<Uint8Array>();
    const source = {
      ...fileSourceFromBytes(data, 'x'),
      readInto: async (start: number, end: number, into: Uint8Array) => {
        buffers.add(into);
        into.set(data.subarray(start, end));
        return into.subarray(0, Math.min(end, data.length) - start);
      },
    };
    const d = await hashSource(source, nodeHasher, { pieceSize: PIECE });
    expect(d.sha1).toBe(sha1(data));
    expect(d.pieceCrc32cs).toEqual(expectedPieces(data, PIECE));
    expect(buffers.size).toBe(2);
  });
});

describe('createHasher', () => {
  it('picks wasm where WebAssembly works and js on request', async () => {
    expect((await createHasher()).backend).toBe('wasm');
    expect((await createHasher({ prefer: 'js' })).backend).toBe('js');
  });
});

describe('instant-upload proof', () => {
  const data = new Uint8Array(randomBytes(3 * PIECE));
  const expected = (nonce: string, offset: number, length: number) =>
    createHash('sha1')
      .update(Buffer.from(nonce, 'utf8'))
      .update(data.subarray(offset, offset + length))
      .digest('hex');

  it('proofSha1 hashes the UTF-8 nonce followed by the range', async () => {
    const nonce = 'nöñce-✓-42';
    expect(await proofSha1(nonce, data.subarray(100, 600))).toBe(expected(nonce, 100, 500));
    expect(await proofSha1(nonce, data.subarray(0, 0), createJsHasher())).toBe(expected(nonce, 0, 0));
  });

  it('proveChallenge reads the range from the source', async () => {
    const src = fileSourceFromBytes(data, 'f');
    for (const [offset, length] of [
      [0, 1],
      [5, 2000],
      [data.length - 1, 1],
      [0, data.length],
    ] as const) {
      expect(await proveChallenge(src, { nonce: 'abc', offset, length }, nodeHasher)).toBe(
        expected('abc', offset, length),
      );
    }
    await expect(proveChallenge(src, { nonce: 'a', offset: data.length, length: 1 })).rejects.toThrow(
      RangeError,
    );
  });
});

describe('Content-Digest', () => {
  it("carries the CRC's four bytes, big-endian, in base64 (RFC 9530)", () => {
    // "123456789" → e3069283 → 4waSgw==
    expect(crc32cDigestHeader(0xe3069283)).toBe('crc32c=:4waSgw==:');
    expect(crc32cDigestHeader(0)).toBe('crc32c=:AAAAAA==:');
    expect(crc32cDigestHeader(0x12)).toBe('crc32c=:AAAAEg==:');
    expect(() => crc32cDigestHeader(-1)).toThrow(RangeError);
  });
});

describe('hexToBase64', () => {
  it('matches Buffer for Content-MD5', () => {
    const data = new Uint8Array(randomBytes(100));
    expect(hexToBase64(md5(data))).toBe(createHash('md5').update(data).digest('base64'));
    expect(hexToBase64('')).toBe('');
  });
});

describe('WorkerHashPool', () => {
  const ports: MessagePort[] = [];
  afterAll(() => {
    for (const p of ports) p.close();
  });

  /** An in-process "worker": a MessageChannel whose far end runs runHashWorker. */
  function fakeWorker(): WorkerLike {
    const { port1, port2 } = new MessageChannel();
    ports.push(port1, port2);
    runHashWorker(port2 as never, { hasher: createWasmHasher() });
    port2.start();
    return port1 as unknown as WorkerLike;
  }

  it.each([1, 2, 3])('gives the same digest as node:crypto with %i worker(s)', async (n) => {
    const pool = new WorkerHashPool(Array.from({ length: n }, fakeWorker));
    for (const size of [0, 1, PIECE, PIECE + 1, 7 * PIECE + 3]) {
      const data = new Uint8Array(randomBytes(size));
      // bytes read on this thread, and a Blob whose pieces the workers read themselves
      for (const source of [fileSourceFromBytes(data, 'x'), fileSourceFromBlob(new Blob([data]), 'x')]) {
        const seen: number[] = [];
        const pieces: [number, number][] = [];
        const d = await pool.hashFile(source, {
          pieceSize: PIECE,
          onProgress: (b) => seen.push(b),
          onPiece: (i, crc) => pieces.push([i, crc]),
        });
        expect(d.sha1).toBe(sha1(data));
        expect(d.pieceCrc32cs).toEqual(expectedPieces(data, PIECE));
        expect(pieces.sort((a, b) => a[0] - b[0])).toEqual(d.pieceCrc32cs.map((crc, i) => [i, crc]));
        expect(seen.at(-1) ?? 0).toBe(size);
      }
    }
  });

  it('runs two files at once on the same workers', async () => {
    const pool = new WorkerHashPool([fakeWorker(), fakeWorker()]);
    const a = new Uint8Array(randomBytes(5 * PIECE + 1));
    const b = new Uint8Array(randomBytes(3 * PIECE + 2));
    const [da, db] = await Promise.all([
      pool.hashFile(fileSourceFromBytes(a, 'a'), { pieceSize: PIECE }),
      pool.hashFile(fileSourceFromBytes(b, 'b'), { pieceSize: PIECE }),
    ]);
    expect(da.sha1).toBe(sha1(a));
    expect(db.sha1).toBe(sha1(b));
    expect(db.pieceCrc32cs).toEqual(expectedPieces(b, PIECE));
    expect(da.pieceCrc32cs).toEqual(expectedPieces(a, PIECE));
  });

  it('fails every hash with a HashWorkerError once a worker crashes', async () => {
    const listeners: ((ev: { message?: string }) => void)[] = [];
    const crashing = {
      postMessage() {},
      addEventListener(type: string, fn: (ev: { message?: string }) => void) {
        if (type === 'error') listeners.push(fn);
      },
      terminate() {},
    } as unknown as WorkerLike;
    const pool = new WorkerHashPool([crashing]);
    const pending = pool.hashFile(fileSourceFromBytes(new Uint8Array(PIECE), 'x'), { pieceSize: PIECE });
    for (const fn of listeners) fn({ message: 'out of memory' });
    await expect(pending).rejects.toBeInstanceOf(HashWorkerError);
    await expect(pending).rejects.toThrow('out of memory');
  });

  it('stops on abort', async () => {
    const pool = new WorkerHashPool([fakeWorker(), fakeWorker()]);
    const ctl = new AbortController();
    ctl.abort(new DOMException('stop', 'AbortError'));
    await expect(
      pool.hashFile(fileSourceFromBytes(new Uint8Array(10), 'x'), { signal: ctl.signal }),
    ).rejects.toThrow('stop');
  });
});
