import { createHash, randomBytes } from 'node:crypto';
import { readdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChecksumMismatchError,
  type ObjectEntry,
  ObjectNotFoundError,
  type StorageNode,
} from '../../src/storage/types.ts';

export interface NodeFixture {
  node: StorageNode;
  cleanup(): Promise<void>;
  /**
   * Where the node's root is visible on this machine, when it is (local dir, loopback sshd). Lets the
   * suite plant and inspect `.tmp/` files; tests that need it are skipped for remote-only drivers.
   */
  localRoot?: string;
  /** The chunk size of the part-file tests: S3 takes parts of 5 MiB and more (except the last). */
  partChunkBytes?: number;
}

const MiB = 1024 * 1024;

/** Feeds `buf` in uneven pieces so no driver can count on chunk boundaries matching its own. */
export function sourceOf(buf: Buffer, piece = 100_003): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < buf.length; at += piece) yield buf.subarray(at, at + piece);
    })(),
  );
}

/** Sends `okBytes` of `buf`, then fails like a client that disconnects mid-upload. */
export function failingSource(buf: Buffer, okBytes: number): Readable {
  return Readable.from(
    (async function* () {
      for (let at = 0; at < okBytes; at += 65_536) yield buf.subarray(at, Math.min(at + 65_536, okBytes));
      await new Promise((r) => setTimeout(r, 20));
      throw new Error('client went away');
    })(),
  );
}

async function listAll(entries: AsyncIterable<ObjectEntry>): Promise<ObjectEntry[]> {
  const out: ObjectEntry[] = [];
  for await (const entry of entries) out.push(entry);
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/**
 * The contract every storage driver must meet (see `StorageNode`). Driver test files call this once
 * per configuration; tests share one node and use distinct keys.
 */
export function storageConformance(name: string, makeNode: () => Promise<NodeFixture>): void {
  describe(`storage conformance: ${name}`, () => {
    let fx: NodeFixture;
    let node: StorageNode;
    let n = 0;
    const key = (label: string) => `test/${label}-${++n}`;

    /** No tmp file is left behind; checked both through the driver and, when possible, on disk. */
    const expectNoTmp = async () => {
      if (fx.localRoot) expect(await readdir(path.join(fx.localRoot, '.tmp'))).toEqual([]);
      expect(await node.sweepTmp(0)).toBe(0);
    };

    beforeAll(async () => {
      fx = await makeNode();
      node = fx.node;
      await node.connect();
    });
    afterAll(async () => {
      await fx?.cleanup();
    });

    it('connect is idempotent and capabilities are booleans', async () => {
      await node.connect();
      const caps = node.capabilities();
      for (const k of ['atomicRename', 'fsync', 'statvfs', 'checksMd5'] as const)
        expect(typeof caps[k]).toBe('boolean');
    });

    it.each([
      ['empty', 0],
      ['one byte', 1],
      ['not a multiple of any write size', 3 * 100_003 + 17],
      ['multi-MiB', 5 * MiB + 1],
    ])('put/get roundtrip: %s (%i bytes)', async (_label, size) => {
      const k = key('roundtrip');
      const data = randomBytes(size);
      await node.put(k, sourceOf(data), size);
      expect(await node.stat(k)).toEqual({ size });
      expect((await readAll(await node.get(k))).equals(data)).toBe(true);
    });

    it('range reads', async () => {
      const k = key('range');
      // Spans several read requests of every driver (255 KiB for OpenSSH).
      const size = 700_001;
      const data = randomBytes(size);
      await node.put(k, sourceOf(data), size);
      const ranges = [
        { start: 0, end: 0 },
        { start: size - 1, end: size - 1 },
        { start: 1000, end: 540_000 },
        { start: 261_119, end: 261_121 },
        { start: 0, end: size - 1 },
      ];
      for (const r of ranges) {
        const got = await readAll(await node.get(k, r));
        expect(got.equals(data.subarray(r.start, r.end + 1)), `range ${r.start}-${r.end}`).toBe(true);
      }
    });

    it('get of a missing key rejects with ObjectNotFoundError', async () => {
      await expect(node.get(key('missing'))).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(node.get(key('missing'), { start: 0, end: 10 })).rejects.toBeInstanceOf(
        ObjectNotFoundError,
      );
    });

    it('stat of present and missing keys', async () => {
      const k = key('stat');
      expect(await node.stat(k)).toBeNull();
      await node.put(k, sourceOf(Buffer.from('hello')), 5);
      expect(await node.stat(k)).toEqual({ size: 5 });
      // A directory made for other keys is not an object.
      expect(await node.stat('test')).toBeNull();
    });

    it('delete is idempotent', async () => {
      const k = key('delete');
      await node.put(k, sourceOf(Buffer.from('x')), 1);
      await node.delete(k);
      expect(await node.stat(k)).toBeNull();
      await node.delete(k);
      await node.delete('never/existed/at-all');
      await expect(node.get(k)).rejects.toBeInstanceOf(ObjectNotFoundError);
    });

    it('put over an existing key replaces it', async () => {
      const k = key('overwrite');
      await node.put(k, sourceOf(randomBytes(4000)), 4000);
      const second = randomBytes(1234);
      await node.put(k, sourceOf(second), 1234);
      expect(await node.stat(k)).toEqual({ size: 1234 });
      expect((await readAll(await node.get(k))).equals(second)).toBe(true);
      await expectNoTmp();
    });

    it('a size mismatch rejects and leaves neither the key nor a tmp file', async () => {
      const k = key('mismatch');
      const data = randomBytes(300_000);
      await expect(node.put(k, sourceOf(data), data.length + 1)).rejects.toThrow(/size/);
      expect(await node.stat(k)).toBeNull();
      await expect(node.put(k, sourceOf(data), data.length - 1)).rejects.toThrow(/size/);
      expect(await node.stat(k)).toBeNull();
      await expectNoTmp();
    });

    it('a failed put leaves the previous object intact', async () => {
      const k = key('keep-old');
      const old = randomBytes(10_000);
      await node.put(k, sourceOf(old), old.length);
      await expect(node.put(k, sourceOf(randomBytes(20)), 10)).rejects.toThrow(/size/);
      expect((await readAll(await node.get(k))).equals(old)).toBe(true);
      await expectNoTmp();
    });

    it('a source that errors mid-way rejects and leaves nothing visible', async () => {
      const k = key('source-error');
      const data = randomBytes(2 * MiB);
      await expect(node.put(k, failingSource(data, MiB), data.length)).rejects.toThrow('client went away');
      expect(await node.stat(k)).toBeNull();
      await expect(node.get(k)).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expectNoTmp();
    });

    it('beforeCommit runs after the bytes are durable; a rejection publishes nothing', async () => {
      const k = key('before-commit');
      const old = randomBytes(5_000);
      await node.put(k, sourceOf(old), old.length);
      const data = randomBytes(MiB + 3);
      let calls = 0;
      await expect(
        node.put(k, sourceOf(data), data.length, {
          beforeCommit: async () => {
            calls++;
            throw new Error('hash mismatch');
          },
        }),
      ).rejects.toThrow('hash mismatch');
      expect(calls).toBe(1);
      // The object that was there is untouched: a liar cannot overwrite stored content.
      expect((await readAll(await node.get(k))).equals(old)).toBe(true);
      await expectNoTmp();
      await node.put(k, sourceOf(data), data.length, { beforeCommit: async () => void calls++ });
      expect(calls).toBe(2);
      expect((await readAll(await node.get(k))).equals(data)).toBe(true);
    });

    it('concurrent puts of different keys', async () => {
      const items = Array.from({ length: 8 }, (_, i) => ({
        k: key(`concurrent-${i}`),
        data: randomBytes(MiB + i),
      }));
      await Promise.all(items.map(({ k, data }) => node.put(k, sourceOf(data), data.length)));
      for (const { k, data } of items) {
        expect((await readAll(await node.get(k))).equals(data)).toBe(true);
      }
      await expectNoTmp();
    });

    it('usage returns sane numbers', async () => {
      const u = await node.usage();
      for (const v of [u.usedBytes, u.freeBytes, u.totalBytes]) {
        // null: the backend cannot say (S3); never a made-up number.
        if (v === null) continue;
        expect(Number.isSafeInteger(v)).toBe(true);
        expect(v).toBeGreaterThanOrEqual(0);
      }
      if (node.capabilities().statvfs) {
        expect(u.totalBytes).toBeGreaterThan(0);
        expect(u.freeBytes).toBeLessThanOrEqual(u.totalBytes as number);
        expect(u.usedBytes).toBeLessThanOrEqual(u.totalBytes as number);
      } else {
        expect(u.freeBytes).toBeNull();
      }
    });

    it('ping resolves on a healthy node', async () => {
      await node.ping();
    });

    it('sweepTmp removes old tmp files and keeps young ones', async (ctx) => {
      if (!fx.localRoot) ctx.skip();
      const tmp = path.join(fx.localRoot!, '.tmp');
      const old = path.join(tmp, 'stray-old');
      const young = path.join(tmp, 'stray-young');
      await writeFile(old, 'left by a crashed writer');
      await writeFile(young, 'a put still in flight');
      const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
      await utimes(old, twoHoursAgo, twoHoursAgo);
      expect(await node.sweepTmp(3600_000)).toBe(1);
      expect(await readdir(tmp)).toEqual(['stray-young']);
      expect(await node.sweepTmp(0)).toBe(1);
      expect(await readdir(tmp)).toEqual([]);
    });

    it('list yields the objects under a prefix with size and mtime, and never a tmp file', async () => {
      const base = `listing-${++n}`;
      const items = [
        { key: `${base}/a/one`, data: randomBytes(10) },
        { key: `${base}/a/empty`, data: Buffer.alloc(0) },
        { key: `${base}/b/c/three`, data: randomBytes(300_001) },
      ].sort((a, b) => a.key.localeCompare(b.key));
      // SFTP mtimes are whole seconds, and a file system's clock can trail Date.now() by a tick
      // (seen once under load): a second of slack below.
      const before = Math.floor(Date.now() / 1000) * 1000 - 1000;
      for (const { key: k, data } of items) await node.put(k, sourceOf(data), data.length);
      const listed = await listAll(node.list(base));
      expect(listed.map(({ key: k, size }) => ({ key: k, size }))).toEqual(
        items.map(({ key: k, data }) => ({ key: k, size: data.length })),
      );
      for (const entry of listed) {
        expect(entry.mtimeMs).toBeGreaterThanOrEqual(before);
        expect(entry.mtimeMs).toBeLessThanOrEqual(Date.now() + 1000);
      }

      if (fx.localRoot) await writeFile(path.join(fx.localRoot, '.tmp', 'stray'), 'a put in flight');
      const all = (await listAll(node.list())).map((entry) => entry.key);
      expect(all).toEqual(expect.arrayContaining(items.map((item) => item.key)));
      expect(all.filter((k) => k.startsWith('.') || k.includes('/.'))).toEqual([]);
      await node.sweepTmp(0);

      await node.delete(items[0]!.key);
      expect((await listAll(node.list(base))).map((entry) => entry.key)).toEqual(
        items.slice(1).map((item) => item.key),
      );
      expect(await listAll(node.list(`${base}-none`))).toEqual([]);
      await expect(listAll(node.list('../etc'))).rejects.toThrow(/key/);
    });

    describe('part files', () => {
      let p = 0;
      const partId = () => `00000000-0000-4000-8000-${String(++p).padStart(12, '0')}`;

      it('takes positioned writes in any order and publishes them atomically as one object', async () => {
        const id = partId();
        const chunk = fx.partChunkBytes ?? MiB;
        const write = { chunkSize: chunk };
        const data = randomBytes(3 * chunk + 777);
        // The last chunk first, then the others in parallel: each lands at its own offset.
        await node.writePart(id, 3 * chunk, data.subarray(3 * chunk), write);
        await Promise.all(
          [0, 1, 2].map((i) =>
            node.writePart(id, i * chunk, data.subarray(i * chunk, (i + 1) * chunk), write),
          ),
        );
        expect(await readAll(await node.readPart(id, { start: chunk - 5, end: chunk + 4 }))).toEqual(
          data.subarray(chunk - 5, chunk + 5),
        );
        const listed: string[] = [];
        for await (const entry of node.listParts()) listed.push(entry.partId);
        expect(listed).toContain(id);

        const k = key('part');
        expect(await node.stat(k)).toBeNull();
        await expect(node.commitPart(id, k, data.length + 1)).rejects.toThrow(/size/);
        expect(await node.stat(k)).toBeNull();
        await node.commitPart(id, k, data.length);
        expect((await readAll(await node.get(k))).equals(data)).toBe(true);
        // Idempotent (a retried complete), and the part itself is gone.
        await node.commitPart(id, k, data.length);
        await expect(node.readPart(id, { start: 0, end: 0 })).rejects.toBeInstanceOf(ObjectNotFoundError);
        const after: string[] = [];
        for await (const entry of node.listParts()) after.push(entry.partId);
        expect(after).not.toContain(id);
      });

      it('never replaces an object that is already stored', async () => {
        const k = key('kept');
        const stored = randomBytes(1000);
        await node.put(k, sourceOf(stored), stored.length);
        const id = partId();
        await node.writePart(id, 0, randomBytes(1000), { chunkSize: MiB });
        await node.commitPart(id, k, 1000);
        expect(await readAll(await node.get(k))).toEqual(stored);
        await expect(node.readPart(id, { start: 0, end: 0 })).rejects.toBeInstanceOf(ObjectNotFoundError);
      });

      it('checks a part write against its MD5 where the node says it does, storing nothing when it differs', async () => {
        const id = partId();
        const data = randomBytes(4096);
        const other = randomBytes(4096);
        const md5Of = (b: Buffer) => createHash('md5').update(b).digest('base64');
        const write = { chunkSize: MiB, md5Base64: md5Of(other) };
        if (!node.capabilities().checksMd5) {
          // Nothing promised: the app checks the MD5 before a write reaches such a node.
          await node.writePart(id, 0, data, write);
          await node.deletePart(id);
          return;
        }
        await expect(node.writePart(id, 0, data, write)).rejects.toBeInstanceOf(ChecksumMismatchError);
        await node.writePart(id, 0, data, { chunkSize: MiB, md5Base64: md5Of(data) });
        // The refused bytes never replaced the accepted ones.
        await expect(
          node.writePart(id, 0, other, { chunkSize: MiB, md5Base64: md5Of(data) }),
        ).rejects.toBeInstanceOf(ChecksumMismatchError);
        expect(
          (await readAll(await node.readPart(id, { start: 0, end: data.length - 1 }))).equals(data),
        ).toBe(true);
        await node.deletePart(id);
      });

      it('deletes parts (a missing one is no error) and refuses ids that are no part id', async () => {
        const id = partId();
        await node.writePart(id, 0, Buffer.from('abc'), { chunkSize: MiB });
        await node.deletePart(id);
        await node.deletePart(id);
        await expect(node.readPart(id, { start: 0, end: 0 })).rejects.toBeInstanceOf(ObjectNotFoundError);
        for (const bad of ['../x', '.tmp', 'a/b', 'UPPER-0000000']) {
          await expect(node.writePart(bad, 0, Buffer.from('x'), { chunkSize: MiB })).rejects.toThrow(
            /part id/,
          );
          await expect(node.deletePart(bad)).rejects.toThrow(/part id/);
        }
      });
    });

    it.each(['../x', '/etc/passwd', 'a/../../b', '.tmp/x', 'a//b', 'a/b/', '', 'UPPER', 'spa ce', 'a/./b'])(
      'rejects the key %j',
      async (bad) => {
        await expect(node.put(bad, sourceOf(Buffer.from('x')), 1)).rejects.toThrow(/key/);
        await expect(node.get(bad)).rejects.toThrow(/key/);
        await expect(node.stat(bad)).rejects.toThrow(/key/);
        await expect(node.delete(bad)).rejects.toThrow(/key/);
      },
    );
  });
}
