import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BATCH_MAX_BYTES } from '@dfs/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random, sha1 } from '../support/bytes.ts';
import {
  type BatchItem,
  CHUNK,
  multipartForm,
  postBatchForm,
  postForm,
  uploader,
} from '../support/uploads.ts';

describe('files and folders', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let bob: Awaited<ReturnType<TestApp['user']>>;
  const req = (method: string, url: string, headers: Record<string, string>, payload?: object) =>
    t.app.inject({ method: method as 'GET', url, headers, payload });
  const folder = async (name: string, parentId?: string, who = alice) =>
    (await req('POST', '/api/folders', who.headers, { name, parentId })).json().file;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) });
    alice = await t.user('alice');
    bob = await t.user('bob');
  });
  afterAll(() => t.close());

  it('creates folders, lists them with sort, order and paging', async () => {
    const docs = await folder('docs');
    expect(docs).toMatchObject({ kind: 'folder', name: 'docs', parentId: null, size: 0, sha1: null });
    const up = uploader(t, alice.headers);
    await up.upload(random(300), 'b.txt', docs.id);
    await up.upload(random(100), 'a.txt', docs.id);
    await up.upload(random(200), 'c.txt', docs.id);
    await folder('zz-sub', docs.id);

    const list = (q: string) =>
      req('GET', `/api/files?parentId=${docs.id}&${q}`, alice.headers).then((r) => r.json());
    // Folders come first when sorting by name.
    expect((await list('sort=name')).items.map((f: { name: string }) => f.name)).toEqual([
      'zz-sub',
      'a.txt',
      'b.txt',
      'c.txt',
    ]);
    // Folders first for every sort, in either order.
    expect((await list('sort=size&order=desc')).items.map((f: { name: string }) => f.name)).toEqual([
      'zz-sub',
      'b.txt',
      'c.txt',
      'a.txt',
    ]);
    expect((await list('sort=name&order=desc')).items.map((f: { name: string }) => f.name)).toEqual([
      'zz-sub',
      'c.txt',
      'b.txt',
      'a.txt',
    ]);
    // Paging across the folder/file boundary.
    const across = await list('sort=name&limit=2&offset=0');
    expect(across.items.map((f: { name: string }) => f.name)).toEqual(['zz-sub', 'a.txt']);
    const page = await list('sort=name&limit=2&offset=1');
    expect(page.total).toBe(4);
    expect(page.items.map((f: { name: string }) => f.name)).toEqual(['a.txt', 'b.txt']);
    // A limit above the total returns everything (the old "recent N" query).
    const recent = await list('sort=createdAt&order=desc&limit=1000');
    expect(recent.items).toHaveLength(4);
    expect(recent.items[0].name).toBe('zz-sub');
  });

  it('searches by name across the whole tree, case-insensitively, with wildcards taken literally', async () => {
    const deep = await folder('deep');
    const deeper = await folder('deeper', deep.id);
    const up = uploader(t, alice.headers);
    await up.upload(random(10), 'Quarterly_Report.PDF', deeper.id);
    await up.upload(random(10), 'quarterly-notes.txt');
    const res = (await req('GET', '/api/files?q=quarterly', alice.headers)).json();
    expect(res.items.map((f: { name: string }) => f.name).sort()).toEqual([
      'Quarterly_Report.PDF',
      'quarterly-notes.txt',
    ]);
    expect((await req('GET', '/api/files?q=y_R', alice.headers)).json().total).toBe(1);
    expect((await req('GET', '/api/files?q=%25', alice.headers)).json().total).toBe(0);
    expect((await req('GET', '/api/files?q=quarterly', bob.headers)).json().total).toBe(0);
  });

  it('rejects invalid names and duplicate folder names', async () => {
    for (const name of ['', '.', '..', 'a/b', 'x\0y', 'é'.repeat(128)]) {
      const res = await req('POST', '/api/folders', alice.headers, { name });
      expect(res.statusCode, JSON.stringify(name)).toBe(400);
    }
    await folder('unique');
    const dup = await req('POST', '/api/folders', alice.headers, { name: 'unique' });
    expect(dup.statusCode).toBe(409);
    expect(errorCode(dup)).toBe('name_conflict');
    // Names are case-sensitive on every database.
    expect((await req('POST', '/api/folders', alice.headers, { name: 'UNIQUE' })).statusCode).toBe(201);
  });

  it('reuses an existing folder when asked to, and never a file of that name', async () => {
    const made = await req('POST', '/api/folders', alice.headers, { name: 'photos', existing: 'reuse' });
    expect(made.statusCode).toBe(201);
    const again = await req('POST', '/api/folders', alice.headers, { name: 'photos', existing: 'reuse' });
    expect(again.statusCode).toBe(200);
    expect(again.json().file.id).toBe(made.json().file.id);
    // Without `reuse` the same request is a conflict, as before.
    const plain = await req('POST', '/api/folders', alice.headers, { name: 'photos' });
    expect(plain.statusCode).toBe(409);
    expect(errorCode(plain)).toBe('name_conflict');
    await uploader(t, alice.headers).upload(random(10), 'notes');
    const onFile = await req('POST', '/api/folders', alice.headers, { name: 'notes', existing: 'reuse' });
    expect(onFile.statusCode).toBe(409);
    expect(errorCode(onFile)).toBe('name_conflict');
    // Another user's folder of the same name is not reused.
    const bobs = await req('POST', '/api/folders', bob.headers, { name: 'photos', existing: 'reuse' });
    expect(bobs.statusCode).toBe(201);
    expect(bobs.json().file.id).not.toBe(made.json().file.id);
    const bad = await req('POST', '/api/folders', alice.headers, { name: 'x', existing: 'merge' });
    expect(bad.statusCode).toBe(400);
  });

  it('answers the path from the root to an entry in one request', async () => {
    const a = await folder('path-a');
    const b = await folder('path-b', a.id);
    const file = await uploader(t, alice.headers).upload(random(20), 'deep.txt', b.id);
    const res = await req('GET', `/api/files/${file.id}/path`, alice.headers);
    expect(res.statusCode).toBe(200);
    expect(res.json().items.map((f: { name: string }) => f.name)).toEqual(['path-a', 'path-b', 'deep.txt']);
    expect((await req('GET', `/api/files/${a.id}/path`, alice.headers)).json().items).toHaveLength(1);
    expect((await req('GET', `/api/files/${file.id}/path`, bob.headers)).statusCode).toBe(404);
    expect((await req('GET', '/api/files/zz-unknown/path', alice.headers)).statusCode).toBe(404);
  });

  it('renames and moves with name_conflict, and refuses a folder into its own subtree', async () => {
    const a = await folder('move-a');
    const b = await folder('move-b', a.id);
    const c = await folder('move-c', b.id);
    const up = uploader(t, alice.headers);
    const f = await up.upload(random(50), 'f.txt', a.id);
    await up.upload(random(50), 'f.txt', c.id);

    const renamed = await req('PATCH', `/api/files/${f.id}`, alice.headers, { name: 'g.md' });
    expect(renamed.statusCode).toBe(200);
    expect(renamed.json().file).toMatchObject({ name: 'g.md', mime: 'text/markdown', sha1: f.sha1 });

    const moved = await req('PATCH', `/api/files/${f.id}`, alice.headers, { parentId: c.id, name: 'f.txt' });
    expect(moved.statusCode).toBe(409);
    expect(errorCode(moved)).toBe('name_conflict');
    const ok = await req('PATCH', `/api/files/${f.id}`, alice.headers, { parentId: c.id });
    expect(ok.json().file.parentId).toBe(c.id);
    const toRoot = await req('PATCH', `/api/files/${f.id}`, alice.headers, { parentId: null });
    expect(toRoot.json().file.parentId).toBeNull();

    for (const target of [a.id, b.id, c.id]) {
      const res = await req('PATCH', `/api/files/${a.id}`, alice.headers, { parentId: target });
      expect(res.statusCode).toBe(400);
      expect(errorCode(res)).toBe('move_into_itself');
    }
    const intoFile = await req('PATCH', `/api/files/${a.id}`, alice.headers, { parentId: f.id });
    expect(errorCode(intoFile)).toBe('not_a_folder');
  });

  it("treats another user's ids as unknown everywhere", async () => {
    const secret = await folder('secret');
    const file = await uploader(t, alice.headers).upload(random(64), 'secret.txt', secret.id);
    const calls = [
      req('GET', `/api/files/${file.id}`, bob.headers),
      req('GET', `/api/files/${file.id}/content`, bob.headers),
      req('PATCH', `/api/files/${file.id}`, bob.headers, { name: 'mine' }),
      req('DELETE', `/api/files/${file.id}`, bob.headers),
      req('GET', `/api/files?parentId=${secret.id}`, bob.headers),
      req('POST', '/api/folders', bob.headers, { name: 'x', parentId: secret.id }),
      req('POST', `/api/files/${file.id}/shares`, bob.headers, {}),
      req('GET', `/api/contents/${file.sha1}`, bob.headers),
      req('POST', `/api/trash/${file.id}/restore`, bob.headers),
      req('DELETE', `/api/trash/${file.id}`, bob.headers),
    ];
    for (const res of await Promise.all(calls)) {
      expect(res.statusCode).toBe(404);
      expect(errorCode(res)).toBe('not_found');
    }
    expect((await req('GET', `/api/contents/${file.sha1}`, alice.headers)).json()).toMatchObject({
      sha1: file.sha1,
      size: 64,
      replicas: [expect.objectContaining({ state: 'ok' })],
    });
  });

  it('trashes a folder with its subtree, restores it, and deletes forever', async () => {
    const up = uploader(t, alice.headers);
    const top = await folder('trash-top');
    const inner = await folder('inner', top.id);
    const file = await up.upload(random(77), 'doomed.txt', inner.id);

    expect((await req('DELETE', `/api/files/${top.id}`, alice.headers)).statusCode).toBe(204);
    expect((await req('GET', `/api/files?q=doomed`, alice.headers)).json().total).toBe(0);
    const trash = (await req('GET', '/api/trash', alice.headers)).json();
    expect(trash.items.map((f: { id: string }) => f.id)).toEqual([top.id]);
    expect(trash.items[0].trashedAt).toEqual(expect.any(String));
    // The name is free again while the old one sits in the trash.
    const twin = await folder('trash-top');

    const restored = await req('POST', `/api/trash/${top.id}/restore`, alice.headers);
    expect(restored.statusCode).toBe(200);
    // The place was taken: back at the root under a suffixed name, with its subtree.
    expect(restored.json().file).toMatchObject({ name: 'trash-top (1)', parentId: null });
    expect((await req('GET', `/api/files?q=doomed`, alice.headers)).json().items[0].id).toBe(file.id);
    await req('DELETE', `/api/files/${twin.id}`, alice.headers);

    // A file restored into a folder that still exists goes back where it was.
    await req('DELETE', `/api/files/${file.id}`, alice.headers);
    const back = (await req('POST', `/api/trash/${file.id}/restore`, alice.headers)).json().file;
    expect(back).toMatchObject({ parentId: inner.id, name: 'doomed.txt' });

    // Delete forever: only from the trash.
    expect((await req('DELETE', `/api/trash/${file.id}`, alice.headers)).statusCode).toBe(404);
    await req('DELETE', `/api/files/${file.id}`, alice.headers);
    expect((await req('DELETE', `/api/trash/${file.id}`, alice.headers)).statusCode).toBe(204);
    expect((await req('GET', `/api/files/${file.id}`, alice.headers)).statusCode).toBe(404);
    const content = await t.app.services.repos.contents.findBySha1(file.sha1);
    expect(content?.unreferenced_since).not.toBeNull();
  });

  it('restores to the root when the original folder is gone', async () => {
    const up = uploader(t, alice.headers);
    const box = await folder('box');
    const file = await up.upload(random(33), 'orphan.txt', box.id);
    await req('DELETE', `/api/files/${file.id}`, alice.headers);
    await req('DELETE', `/api/files/${box.id}`, alice.headers);
    await req('DELETE', `/api/trash/${box.id}`, alice.headers);
    const back = (await req('POST', `/api/trash/${file.id}/restore`, alice.headers)).json().file;
    expect(back).toMatchObject({ parentId: null, name: 'orphan.txt' });
  });

  it('empties the trash in one request, releasing the quota, and only the caller’s', async () => {
    const up = uploader(t, bob.headers);
    const doomed = await up.upload(random(4000), 'empty-me.bin');
    const dir = (await req('POST', '/api/folders', bob.headers, { name: 'empty-dir' })).json().file;
    await up.upload(random(3000), 'inside.bin', dir.id);
    const keep = await uploader(t, alice.headers).upload(random(50), 'alice-keeps.txt');
    await req('DELETE', `/api/files/${keep.id}`, alice.headers);
    const usedBefore = (await req('GET', '/api/auth/me', bob.headers)).json().usage.usedBytes;
    await req('DELETE', `/api/files/${doomed.id}`, bob.headers);
    await req('DELETE', `/api/files/${dir.id}`, bob.headers);

    const res = await req('DELETE', '/api/trash', bob.headers);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ purged: 2 });
    expect((await req('GET', '/api/trash', bob.headers)).json().total).toBe(0);
    expect((await req('GET', '/api/auth/me', bob.headers)).json().usage.usedBytes).toBe(usedBefore - 7000);
    // Someone else's trash is untouched.
    expect(
      (await req('GET', '/api/trash', alice.headers)).json().items.map((f: { id: string }) => f.id),
    ).toContain(keep.id);
    expect((await req('DELETE', '/api/trash', bob.headers)).json()).toEqual({ purged: 0 });
  });

  it('sums what a folder holds, all levels down, leaving out the trash', async () => {
    const up = uploader(t, alice.headers);
    const top = await folder('sum-top');
    const mid = await folder('mid', top.id);
    await folder('empty', mid.id);
    await up.upload(random(1000), 'a.bin', top.id);
    await up.upload(random(2500), 'b.bin', mid.id);
    const gone = await up.upload(random(9999), 'gone.bin', mid.id);
    await req('DELETE', `/api/files/${gone.id}`, alice.headers);
    const res = await req('GET', `/api/files/${top.id}/summary`, alice.headers);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ files: 2, folders: 2, bytes: 3500 });
    const file = await up.upload(random(42), 'c.bin', top.id);
    expect((await req('GET', `/api/files/${file.id}/summary`, alice.headers)).json()).toEqual({
      files: 1,
      folders: 0,
      bytes: 42,
    });
    expect((await req('GET', `/api/files/${top.id}/summary`, bob.headers)).statusCode).toBe(404);
  });

  it('keeps per-user names off the shared content row', async () => {
    const data = random(CHUNK + 9);
    const a = await uploader(t, alice.headers).upload(data, 'a.txt');
    const b = await uploader(t, bob.headers).upload(data, 'b.txt');
    expect(b.instant).toBe(true);
    await req('PATCH', `/api/files/${a.id}`, alice.headers, { name: 'renamed.txt' });
    expect((await req('GET', `/api/files/${b.id}`, bob.headers)).json().file.name).toBe('b.txt');
    expect(a.sha1).toBe(sha1(data));
  });

  describe('one-request multipart upload', () => {
    const form = multipartForm;

    it('stores the file with the same verification and dedupe as the chunked path', async () => {
      const dir = await folder('forms');
      const data = random(CHUNK * 2 + 17);
      const res = await postForm(t, alice.headers, 'form.bin', data, dir.id);
      expect(res.statusCode).toBe(201);
      expect(res.json().file).toMatchObject({
        name: 'form.bin',
        size: data.length,
        sha1: sha1(data),
        parentId: dir.id,
      });
      const again = await t.app.inject({
        method: 'POST',
        url: '/api/files',
        ...form('copy.bin', data),
        headers: { ...form('copy.bin', data).headers, ...bob.headers },
      });
      expect(again.statusCode).toBe(201);
      expect(await t.app.services.db('contents').where({ sha1: sha1(data) })).toHaveLength(1);
    });

    it('keeps the file name as the user named it: quotes as browsers escape them, backslashes', async () => {
      const data = random(100);
      // A browser sends `say "hi"\\new.txt` as below (the HTML standard's form encoding).
      const { payload, headers } = form('say %22hi%22\\new.txt', data);
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/files',
        payload,
        headers: { ...headers, ...alice.headers },
      });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json().file.name).toBe('say "hi"\\new.txt');
    });

    it('puts the file in the folder named by a field that follows it (curl -F file=@… -F parentId=…)', async () => {
      const dir = await folder('late-field');
      const data = random(CHUNK * 3 + 5);
      const boundary = '----dfs-late-field';
      // The body arrives over time, as from a socket: the folder field only after the file's bytes.
      const body = Readable.from(
        (async function* () {
          yield Buffer.from(
            `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="late.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
          );
          for (let at = 0; at < data.length; at += CHUNK) {
            yield data.subarray(at, at + CHUNK);
            await new Promise((r) => setTimeout(r, 5));
          }
          yield Buffer.from(
            `\r\n--${boundary}\r\nContent-Disposition: form-data; name="parentId"\r\n\r\n${dir.id}\r\n`,
          );
          yield Buffer.from(`--${boundary}--\r\n`);
        })(),
      );
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/files',
        payload: body,
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, ...alice.headers },
      });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json().file).toMatchObject({ name: 'late.bin', parentId: dir.id, sha1: sha1(data) });
    });

    it('checks a sha1 field and registers nothing, keeps no part, when the bytes disagree', async () => {
      const partsDir = path.join(t.dataDir, 'nodes', 'local', '.parts');
      const post = (name: string, data: Buffer, fields: Record<string, string>) => {
        const f = form(name, data, undefined, fields);
        return t.app.inject({
          method: 'POST',
          url: '/api/files',
          payload: f.payload,
          headers: { ...f.headers, ...alice.headers },
        });
      };
      // One chunk or less is hashed in memory; more streams into a part file on the node.
      for (const size of [5_000, CHUNK * 3 + 5]) {
        const data = random(size);
        const ok = await post(`named-${size}.bin`, data, { sha1: sha1(data).toUpperCase() });
        expect(ok.statusCode, `size ${size}`).toBe(201);
        expect(ok.json().file.sha1).toBe(sha1(data));

        const other = random(size);
        const lie = await post(`lie-${size}.bin`, other, { sha1: sha1(random(8)) });
        expect(lie.statusCode).toBe(422);
        expect(errorCode(lie)).toBe('hash_mismatch');
        expect(await t.app.services.repos.contents.findBySha1(sha1(other))).toBeUndefined();
        expect((await req('GET', `/api/files?q=lie-${size}`, alice.headers)).json().total).toBe(0);
        expect(existsSync(partsDir) ? await readdir(partsDir) : []).toEqual([]);
      }
      const bad = await post('bad.bin', random(10), { sha1: 'not-a-hash' });
      expect(bad.statusCode).toBe(400);
    });

    describe('batch', () => {
      const postBatch = (items: BatchItem[], who = alice) => postBatchForm(t, who.headers, items);

      it('stores many files in one request, each in its own folder, with dedupe', async () => {
        const dir = await folder('batch-dir');
        const shared = random(700);
        const items: BatchItem[] = [
          { name: 'b1.txt', data: random(100), parentId: dir.id },
          { name: 'b2.bin', data: shared },
          { name: 'b3.bin', data: shared, parentId: dir.id },
          { name: 'empty.txt', data: Buffer.alloc(0) },
        ];
        for (const item of items) item.sha1 = sha1(item.data);
        const res = await postBatch(items);
        expect(res.statusCode).toBe(201);
        const files = res.json().files;
        expect(files.map((f: { name: string }) => f.name)).toEqual([
          'b1.txt',
          'b2.bin',
          'b3.bin',
          'empty.txt',
        ]);
        expect(files.map((f: { parentId: string | null }) => f.parentId)).toEqual([
          dir.id,
          null,
          dir.id,
          null,
        ]);
        expect(files.map((f: { sha1: string }) => f.sha1)).toEqual(items.map((i) => sha1(i.data)));
        expect(await t.app.services.db('contents').where({ sha1: sha1(shared) })).toHaveLength(1);
        const body = await req('GET', `/api/files/${files[2].id}/content`, alice.headers);
        expect(body.rawPayload.equals(shared)).toBe(true);
      });

      it('all or nothing: a wrong sha1, a bad name or an unknown folder adds no file of the batch', async () => {
        const good = { name: 'keep-out-1.txt', data: random(50) };
        const cases: [BatchItem, number, string][] = [
          [{ name: 'keep-out-2.txt', data: random(60), sha1: sha1(random(3)) }, 422, 'hash_mismatch'],
          [{ name: '..', data: random(60) }, 400, 'invalid_name'],
          [{ name: 'keep-out-3.txt', data: random(60), parentId: 'no-such-folder' }, 404, 'not_found'],
        ];
        for (const [bad, status, code] of cases) {
          const res = await postBatch([good, bad]);
          expect(res.statusCode, code).toBe(status);
          expect(errorCode(res)).toBe(code);
          expect(res.json().error.index).toBe(1);
        }
        expect((await req('GET', '/api/files?q=keep-out', alice.headers)).json().total).toBe(0);
      });

      it('refuses a batch above its byte bound, an empty form and a missing session', async () => {
        const big = await postBatch([
          { name: 'big.bin', data: random(BATCH_MAX_BYTES - 10) },
          { name: 'big2.bin', data: random(11) },
        ]);
        expect(big.statusCode).toBe(413);
        expect(errorCode(big)).toBe('payload_too_large');
        const empty = await postBatchForm(t, alice.headers, []);
        expect(empty.statusCode).toBe(400);
        const anonymous = await postBatchForm(t, {}, []);
        expect(anonymous.statusCode).toBe(401);
        expect((await req('GET', '/api/files?q=big.bin', alice.headers)).json().total).toBe(0);
      });
    });

    it('rejects a form without a file field and a non-multipart body', async () => {
      const boundary = 'b';
      const payload = `--${boundary}\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--${boundary}--\r\n`;
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/files',
        payload,
        headers: { ...alice.headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
      });
      expect(res.statusCode).toBe(400);
      const json = await t.app.inject({
        method: 'POST',
        url: '/api/files',
        payload: {},
        headers: alice.headers,
      });
      expect(json.statusCode).toBe(415);
    });
  });
});
