import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { nextcloudcmd } from '@dfs/cluster/clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppInstance, buildApp } from '../../src/app.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { entries, fileSha1, localTree, serverHashes, serverTree } from '../support/sync-trees.ts';
import { postForm } from '../support/uploads.ts';

const MB = 1024 * 1024;
const BIG_BYTES = 300 * MB;

/** A file of `size` random bytes, written in pieces (never whole in memory). */
async function randomFile(file: string, size: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const piece = Buffer.alloc(Math.min(size, 16 * MB));
  await writeFile(file, '');
  for (let left = size; left > 0; left -= piece.length) {
    randomFillSync(piece);
    await writeFile(file, left >= piece.length ? piece : piece.subarray(0, left), { flag: 'a' });
  }
}

/**
 * 300 small files in folders up to six levels deep, named as people name files: accents composed
 * (NFC) and decomposed (NFD, as macOS writes them), CJK, emoji, several spaces.
 */
function smallTree(): Array<{ path: string; data: Buffer }> {
  const folders = [
    '',
    'Documents',
    'Documents/Projets été',
    'Photos/📷 2026',
    'Cafe\u0301 (NFD)',
    '日本語のフォルダ',
    'one/two/three/four/five/six',
    'space  between',
  ];
  const stems = ['notes', 'Ünïcödé', 'e\u0301te\u0301', '報告書', '🎉 party', 'two  spaces'];
  const out: Array<{ path: string; data: Buffer }> = [];
  for (let i = 0; i < 300; i++) {
    const folder = folders[i % folders.length]!;
    const name = `${stems[i % stems.length]} ${i}.txt`;
    out.push({
      path: folder ? `${folder}/${name}` : name,
      data: Buffer.from(`file ${i}\n`.repeat(1 + (i % 97))),
    });
  }
  return out;
}

interface Seen {
  method: string;
  url: string;
  status: number;
}

/**
 * Debian's `nextcloudcmd` — the sync engine of Nextcloud's desktop app — against dfs on a real
 * socket: a first sync with a chunked 300 MB upload, quiet re-syncs, changes on either side, a
 * conflict, and an app restart in the middle of a chunked upload.
 */
describe('nextcloudcmd syncs a folder with dfs', () => {
  let t: TestApp;
  let app: AppInstance;
  let port = 0;
  let url: string;
  let tmp: string;
  let local: string;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let secret: string;
  const seen: Seen[] = [];
  /** Set to restart the app once a chunk of a chunked upload has been answered. */
  let restartAfterChunk = false;
  let restarted: Promise<void> | null = null;

  /** Every request the client makes is noted (hooks go on before the app is ready). */
  const watch = (instance: AppInstance) =>
    instance.addHook('onResponse', async (request, reply) => {
      seen.push({ method: request.method, url: decodeURIComponent(request.url), status: reply.statusCode });
      if (
        restartAfterChunk &&
        request.method === 'PUT' &&
        request.url.startsWith('/remote.php/dav/uploads/')
      ) {
        restartAfterChunk = false;
        restarted = restart();
      }
    });
  const listen = async (instance: AppInstance) => {
    await instance.listen({ port, host: '127.0.0.1' });
    port = (instance.server.address() as AddressInfo).port;
  };
  /** The app goes away mid-request, as a crash or a deploy does, and comes back on its data. */
  const restart = async () => {
    const old = app;
    old.server.closeAllConnections();
    await old.close();
    app = await buildApp(t.config, { logger: { level: 'silent' } });
    watch(app);
    await listen(app);
  };

  const sync = async () => {
    seen.length = 0;
    return nextcloudcmd({ dir: local, url, user: 'alice', password: secret, home: tmp });
  };
  const writes = () =>
    seen.filter((r) => ['PUT', 'MOVE', 'DELETE', 'MKCOL', 'COPY', 'PROPPATCH'].includes(r.method));
  const server = () => serverHashes(app, alice.headers);
  /** Both trees alike, but for conflict copies: the client keeps them local (its default). */
  const expectInSync = async () => {
    const mine = entries(await localTree(local)).filter(([p]) => !p.includes('(conflicted copy'));
    expect(entries(await server())).toEqual(mine);
  };

  beforeAll(async () => {
    t = await startTestApp();
    app = t.app;
    watch(app);
    alice = await t.user('alice');
    secret = await t.appPassword(alice.headers, 'Nextcloud sync client');
    await listen(app);
    url = `http://127.0.0.1:${port}`;
    tmp = await mkdtemp(path.join(os.tmpdir(), 'dfs-nc-sync-'));
    local = path.join(tmp, 'Nextcloud');
    await mkdir(local);
  });
  afterAll(async () => {
    if (app !== t.app) await app.close();
    await t.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('first sync: 300 small files with Unicode names and a 300 MB file (chunked) land with their SHA-1s', async () => {
    for (const f of smallTree()) {
      await mkdir(path.join(local, path.dirname(f.path)), { recursive: true });
      await writeFile(path.join(local, f.path), f.data);
    }
    await randomFile(path.join(local, 'Videos', 'big.bin'), BIG_BYTES);
    const run = await sync();
    expect(run.code, run.output.slice(-3000)).toBe(0);
    await expectInSync();
    // The big file went through chunked upload v2 and nowhere else.
    expect(seen.some((r) => r.method === 'MKCOL' && r.url.startsWith('/remote.php/dav/uploads/alice/'))).toBe(
      true,
    );
    const move = seen.find((r) => r.method === 'MOVE' && r.url.endsWith('/.file'));
    expect(move?.status).toBe(201);
    expect(seen.some((r) => r.method === 'PUT' && r.url.endsWith('/Videos/big.bin'))).toBe(false);
    const file = (await serverTree(app, alice.headers)).get('Videos/big.bin');
    expect(file?.sha1).toBe(await fileSha1(path.join(local, 'Videos', 'big.bin')));
  }, 600_000);

  it('a run with nothing changed sends nothing; once settled it only lists the root', async () => {
    for (const pass of [1, 2]) {
      const run = await sync();
      expect(run.code, run.output.slice(-3000)).toBe(0);
      expect(writes(), `pass ${pass}`).toEqual([]);
      expect(seen.some((r) => r.method === 'GET' && r.url.startsWith('/remote.php/dav/files/'))).toBe(false);
    }
    // The steady state: one Depth-1 PROPFIND of the root, everything else recognised by ETag.
    expect(seen.filter((r) => r.method === 'PROPFIND').map((r) => r.url)).toEqual([
      '/remote.php/dav/files/alice/',
    ]);
  }, 120_000);

  it("brings the server's changes down: an upload, a replace, a rename, a move and a trash", async () => {
    const tree = await serverTree(app, alice.headers);
    const idOf = (p: string) => tree.get(p)!.id;
    const docs = idOf('Documents/');
    expect(
      (await postForm(t, alice.headers, 'from the web.txt', Buffer.from('uploaded in the browser\n'), docs))
        .statusCode,
    ).toBe(201);
    const basic = { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}` };
    const replaced = await app.inject({
      method: 'PUT',
      url: `/remote.php/dav/files/alice/${encodeURIComponent('notes 0.txt')}`,
      headers: basic,
      payload: 'new content from another device\n',
    });
    expect(replaced.statusCode).toBe(204);
    const patch = (id: string, body: object) =>
      app.inject({ method: 'PATCH', url: `/api/files/${id}`, headers: alice.headers, payload: body });
    expect(
      (await patch(idOf('Documents/Ünïcödé 1.txt'), { name: 'renamed on the server.txt' })).statusCode,
    ).toBe(200);
    expect(
      (await patch(idOf('Documents/two  spaces 41.txt'), { parentId: idOf('one/two/three/') })).statusCode,
    ).toBe(200);
    expect(
      (
        await app.inject({
          method: 'DELETE',
          url: `/api/files/${idOf('Documents/報告書 9.txt')}`,
          headers: alice.headers,
        })
      ).statusCode,
    ).toBe(204);

    const run = await sync();
    expect(run.code, run.output.slice(-3000)).toBe(0);
    await expectInSync();
    expect(await readFile(path.join(local, 'notes 0.txt'), 'utf8')).toBe('new content from another device\n');
    // Renamed and moved files are recognised by their id: moved locally, not downloaded again.
    const downloads = seen
      .filter((r) => r.method === 'GET' && r.url.startsWith('/remote.php/dav/files/'))
      .map((r) => r.url);
    expect(downloads.sort()).toEqual([
      '/remote.php/dav/files/alice/Documents/from the web.txt',
      '/remote.php/dav/files/alice/notes 0.txt',
    ]);
    expect(writes()).toEqual([]);
  }, 120_000);

  it('sends local changes up: renaming the 300 MB file is a MOVE (same id, no bytes), a delete lands in the trash', async () => {
    const before = await serverTree(app, alice.headers);
    const bigId = before.get('Videos/big.bin')!.id;
    await mkdir(path.join(local, 'Archive'));
    await rename(path.join(local, 'Videos', 'big.bin'), path.join(local, 'Archive', 'big renamed.bin'));
    await rm(path.join(local, 'Documents', 'Ünïcödé 25.txt'));

    const run = await sync();
    expect(run.code, run.output.slice(-3000)).toBe(0);
    await expectInSync();
    const after = await serverTree(app, alice.headers);
    expect(after.get('Archive/big renamed.bin')?.id).toBe(bigId);
    expect(
      seen.some((r) => r.method === 'MOVE' && r.url === '/remote.php/dav/files/alice/Videos/big.bin'),
    ).toBe(true);
    expect(seen.some((r) => r.method === 'PUT' || r.url.startsWith('/remote.php/dav/uploads/'))).toBe(false);
    const trash = (await app.inject({ url: '/api/trash', headers: alice.headers })).json() as {
      items: Array<{ name: string }>;
    };
    expect(trash.items.map((i) => i.name)).toContain('Ünïcödé 25.txt');
  }, 120_000);

  it('a file changed on both sides: the server keeps its version, the client keeps its own as a conflict copy', async () => {
    const file = path.join(local, 'Documents', 'Projets été', 'e\u0301te\u0301 2.txt');
    const basic = { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}` };
    const theirs = 'changed on the phone\n';
    const put = await app.inject({
      method: 'PUT',
      url: `/remote.php/dav/files/alice/Documents/${encodeURIComponent('Projets été')}/${encodeURIComponent('e\u0301te\u0301 2.txt')}`,
      headers: basic,
      payload: theirs,
    });
    expect(put.statusCode).toBe(204);
    const mine = 'changed on this laptop, at a different length\n';
    await writeFile(file, mine);
    await utimes(file, new Date(), new Date(Date.now() + 5000));

    const run = await sync();
    expect(run.code, run.output.slice(-3000)).toBe(0);
    expect(await readFile(file, 'utf8')).toBe(theirs);
    const copies = (await readdir(path.dirname(file))).filter((n) => n.includes('conflicted copy'));
    expect(copies).toHaveLength(1);
    expect(await readFile(path.join(path.dirname(file), copies[0]!), 'utf8')).toBe(mine);
    const onServer = await app.inject({
      url: `/remote.php/dav/files/alice/Documents/${encodeURIComponent('Projets été')}/${encodeURIComponent('e\u0301te\u0301 2.txt')}`,
      headers: basic,
    });
    expect(onServer.body).toBe(theirs);
    expect(writes().filter((w) => w.url.includes('e\u0301te\u0301 2.txt'))).toEqual([]);
  }, 120_000);

  it('an app restart between chunks of a big upload: the next runs resume and the sync completes', async () => {
    const file = path.join(local, 'Videos', 'restart.bin');
    await randomFile(file, 40 * MB);
    restartAfterChunk = true;
    const log: Seen[] = [];
    let code = -1;
    for (let attempt = 0; attempt < 5 && code !== 0; attempt++) {
      const run = await sync();
      log.push(...seen);
      if (restarted) await restarted;
      code = run.code;
    }
    expect(code).toBe(0);
    expect(restarted).not.toBeNull();
    const tree = await serverTree(app, alice.headers);
    expect(tree.get('Videos/restart.bin')?.sha1).toBe(await fileSha1(file));
    // The chunk acknowledged before the restart was not sent again: the client listed the upload
    // folder and went on after it.
    const firstChunks = log.filter((r) => r.method === 'PUT' && /\/uploads\/alice\/\d+\/0+$/.test(r.url));
    expect(firstChunks).toHaveLength(1);
    expect(
      log.some((r) => r.method === 'PROPFIND' && /\/uploads\/alice\/\d+\/?$/.test(r.url) && r.status === 207),
    ).toBe(true);
    await expectInSync();
  }, 600_000);
});
