import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FileEntry } from '@dfs/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { random, sha1 } from '../support/bytes.ts';

const execFileP = promisify(execFile);

/**
 * Debian's rclone with `vendor=nextcloud` (X-OC-Mtime on PUT, `oc:checksums` SHA-1s, mtimes to
 * the second) against both mounts of the one WebDAV implementation: Nextcloud's files mount, as
 * the README sets it up, and dfs's own `/dav/`.
 */
const MOUNTS = [
  { name: '/remote.php/dav/files/<user>', remote: 'nc', path: '/remote.php/dav/files/alice' },
  // As the README says for /dav/: rclone 1.63 and later refuse vendor=nextcloud on a URL that is
  // not a files mount unless chunked uploads are off (1.60 has none and ignores the option).
  { name: '/dav/', remote: 'dav', path: '/dav/', chunkSize: '0' },
] as const;

/** Local modification times with a fraction of a second, as a real file system keeps them. */
const T0 = Date.parse('2025-03-05T06:07:08.250Z');

/** Names (relative, `/`-separated) → SHA-1 of every file below `dir`. */
async function localTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    out.set(path.relative(dir, full).split(path.sep).join('/'), sha1(await readFile(full)));
  }
  return new Map([...out].sort());
}

/** Writes `files` under `dir`, the i-th with the modification time T0 + i seconds. */
async function writeTree(dir: string, files: Map<string, Buffer>): Promise<void> {
  let i = 0;
  for (const [name, data] of files) {
    const file = path.join(dir, name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, data);
    const when = new Date(T0 + 1000 * i++);
    await utimes(file, when, when);
  }
}

describe('rclone with vendor=nextcloud', () => {
  let t: TestApp;
  let tmp: string;
  let env: NodeJS.ProcessEnv;
  let owner: Record<string, string>;
  let basic: Record<string, string>;
  /** Every request the app answered: method and URL. */
  const requests: { method: string; url: string }[] = [];

  const rclone = async (...args: string[]) => {
    try {
      return await execFileP('rclone', args, { env, maxBuffer: 16 << 20 });
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`rclone ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
    }
  };
  /** Runs `work`; answers the requests the app received meanwhile. */
  const during = async (work: () => Promise<unknown>) => {
    const from = requests.length;
    await work();
    return requests.slice(from).map((r) => ({ method: r.method, url: decodeURIComponent(r.url) }));
  };
  /** Runs `work`; answers the URLs of the PUTs the app received meanwhile. */
  const putsDuring = async (work: () => Promise<unknown>): Promise<string[]> =>
    (await during(work)).flatMap((r) => (r.method === 'PUT' ? [r.url] : []));

  /** The entries below the folder at `folderPath` (`/`-separated, from the root), by relative name. */
  async function serverTree(folderPath: string): Promise<Map<string, FileEntry>> {
    const list = async (parentId?: string): Promise<FileEntry[]> => {
      const query = new URLSearchParams({ limit: '1000', ...(parentId ? { parentId } : {}) });
      const res = await t.app.inject({ url: `/api/files?${query}`, headers: owner });
      expect(res.statusCode, res.body).toBe(200);
      return res.json().items;
    };
    let id: string | undefined;
    for (const name of folderPath.split('/')) {
      const folder = (await list(id)).find((e) => e.kind === 'folder' && e.name === name);
      if (!folder) throw new Error(`no folder ${folderPath} on the server`);
      id = folder.id;
    }
    const out = new Map<string, FileEntry>();
    const walk = async (parentId: string, prefix: string) => {
      for (const entry of await list(parentId)) {
        if (entry.kind === 'folder') await walk(entry.id, `${prefix}${entry.name}/`);
        else out.set(`${prefix}${entry.name}`, entry);
      }
    };
    await walk(id!, '');
    return new Map([...out].sort());
  }
  const serverHashes = async (folderPath: string) =>
    new Map([...(await serverTree(folderPath))].map(([name, e]) => [name, e.sha1]));

  /** A change another of the user's devices makes on the server: a WebDAV PUT. */
  async function davPut(url: string, data: Buffer, mtimeSeconds?: number): Promise<void> {
    const res = await t.app.inject({
      method: 'PUT',
      url,
      headers: { ...basic, ...(mtimeSeconds ? { 'x-oc-mtime': String(mtimeSeconds) } : {}) },
      payload: data,
    });
    expect([201, 204], res.body).toContain(res.statusCode);
  }

  beforeAll(async () => {
    t = await startTestApp();
    t.app.addHook('onResponse', async (request) => {
      requests.push({ method: request.method, url: request.url });
    });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (t.app.server.address() as AddressInfo).port;
    const alice = await t.user('alice');
    owner = alice.headers;
    const secret = await t.appPassword(alice.headers, 'rclone');
    basic = { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}` };
    tmp = await mkdtemp(path.join(os.tmpdir(), 'dfs-nc-rclone-'));
    await writeFile(path.join(tmp, 'rclone.conf'), '');
    const obscured = (await execFileP('rclone', ['obscure', secret])).stdout.trim();
    env = { ...process.env, RCLONE_CONFIG: path.join(tmp, 'rclone.conf') };
    for (const mount of MOUNTS) {
      const prefix = `RCLONE_CONFIG_${mount.remote.toUpperCase()}_`;
      Object.assign(env, {
        [`${prefix}TYPE`]: 'webdav',
        [`${prefix}URL`]: `http://127.0.0.1:${port}${mount.path}`,
        [`${prefix}VENDOR`]: 'nextcloud',
        [`${prefix}USER`]: 'alice',
        [`${prefix}PASS`]: obscured,
        ...('chunkSize' in mount ? { [`${prefix}NEXTCLOUD_CHUNK_SIZE`]: mount.chunkSize } : {}),
      });
    }
  });
  afterAll(async () => {
    await t?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  describe.each(MOUNTS)('on $name', (mount) => {
    // Each mount works in a folder of its own in the one account.
    const top = `via-${mount.remote}`;
    const remote = (sub: string) => `${mount.remote}:${top}/${sub}`;
    const davUrl = (sub: string) =>
      `${mount.path.replace(/\/$/, '')}/${top}/${sub.split('/').map(encodeURIComponent).join('/')}`;
    let work: string;

    beforeAll(async () => {
      work = path.join(tmp, mount.remote);
      await mkdir(work);
    });

    it('rclone copy keeps modification times to the second, and a second copy sends no PUT', async () => {
      const src = path.join(work, 'copy');
      const files = new Map<string, Buffer>([
        ['a.txt', random(1000)],
        ['Photos/été à la mer.jpg', random(70_000)],
        ['Photos/deep/notes #1.md', random(10)],
        ['empty', Buffer.alloc(0)],
      ]);
      await writeTree(src, files);

      const first = await putsDuring(() => rclone('copy', src, remote('copy')));
      expect(first).toHaveLength(files.size);

      const server = await serverTree(`${top}/copy`);
      expect([...server.keys()]).toEqual([...(await localTree(src)).keys()]);
      for (const [name, entry] of server) {
        const local = (await stat(path.join(src, name))).mtimeMs;
        // X-OC-Mtime carries whole seconds; the server keeps exactly what it was given.
        expect(Date.parse(entry.mtime), name).toBe(Math.floor(local / 1000) * 1000);
      }
      // rclone reads them back as getlastmodified: the listing shows the local times.
      const listed = (await rclone('lsl', remote('copy'))).stdout;
      expect(listed).toContain('2025-03-05 06:07:08.000000000 a.txt');

      const again = await putsDuring(() => rclone('copy', src, remote('copy')));
      expect(again).toEqual([]);
    });

    it('rclone moveto and copyto run on the server: no PUT, the mtime kept, a move keeps the id', async () => {
      const src = path.join(work, 'move');
      await writeTree(src, new Map([['report.pdf', random(5000)]]));
      await rclone('copy', src, remote('move'));
      const before = (await serverTree(`${top}/move`)).get('report.pdf')!;

      const sent = await during(async () => {
        await rclone('moveto', remote('move/report.pdf'), remote('move/archive/2025 report.pdf'));
        await rclone('copyto', remote('move/archive/2025 report.pdf'), remote('move/copy.pdf'));
      });
      const methods = sent.map((r) => r.method);
      expect(methods).toContain('MOVE');
      expect(methods).toContain('COPY');
      expect(methods).not.toContain('PUT');
      expect(methods).not.toContain('GET');
      const after = await serverTree(`${top}/move`);
      expect([...after.keys()]).toEqual(['archive/2025 report.pdf', 'copy.pdf']);
      const moved = after.get('archive/2025 report.pdf')!;
      expect(moved).toMatchObject({ id: before.id, sha1: before.sha1, mtime: before.mtime });
      expect(after.get('copy.pdf')).toMatchObject({ sha1: before.sha1, mtime: before.mtime });
      expect(after.get('copy.pdf')!.id).not.toBe(before.id);
    });

    it('rclone check compares SHA-1s, and finds a change that keeps the size and the mtime', async () => {
      const src = path.join(work, 'check');
      const files = new Map<string, Buffer>([
        ['one.bin', random(4096)],
        ['sub/two.bin', random(513)],
        ['sub/three.txt', random(77)],
      ]);
      await writeTree(src, files);
      await rclone('copy', src, remote('check'));

      const same = await rclone('check', '-v', src, remote('check'));
      expect(same.stderr).toContain('0 differences found');
      expect(same.stderr).toContain('3 matching files');
      expect(same.stderr).not.toContain('No common hash found');
      // rclone lists the server's SHA-1s (from oc:checksums), the local files' own.
      const hashes = (
        await rclone('lsf', '-R', '--files-only', '--hash', 'SHA1', '--format', 'hp', remote('check'))
      ).stdout
        .trim()
        .split('\n')
        .sort();
      expect(hashes).toEqual([...files].map(([name, data]) => `${sha1(data)};${name}`).sort());

      // Another device replaces sub/two.bin: same size, same mtime, other bytes.
      const mtime = Math.floor((await stat(path.join(src, 'sub/two.bin'))).mtimeMs / 1000);
      await davPut(davUrl('check/sub/two.bin'), random(513), mtime);
      const entry = (await serverTree(`${top}/check`)).get('sub/two.bin')!;
      expect(entry.size).toBe(513);
      expect(Date.parse(entry.mtime)).toBe(mtime * 1000);

      const changed = await execFileP('rclone', ['check', src, remote('check')], { env }).then(
        () => {
          throw new Error('rclone check found no difference');
        },
        (error: { code?: number; stderr: string }) => error,
      );
      expect(changed.code).toBe(1);
      expect(changed.stderr).toContain('1 differences found');
      expect(changed.stderr).toContain('ERROR : sub/two.bin: sha1 differ');
      expect(changed.stderr).not.toContain('No common hash found');
    });

    it('rclone bisync converges after changes on both sides', async () => {
      const local = path.join(work, 'bisync');
      const workdir = path.join(work, 'bisync-state');
      const files = new Map<string, Buffer>([
        ['keep.txt', random(100)],
        ['edit-here.txt', random(200)],
        ['rename-there.txt', random(300)],
        ['delete-there.txt', random(400)],
        ['docs/a.md', random(500)],
        ['docs/b.md', random(600)],
      ]);
      await writeTree(local, files);
      const bisync = (...args: string[]) =>
        rclone('bisync', '-v', local, remote('bisync'), '--workdir', workdir, ...args);

      // bisync wants both sides to exist; the first run (--resync) then makes the server's side
      // the same as the local one.
      await rclone('mkdir', remote('bisync'));
      const resync = await bisync('--resync');
      expect(resync.stderr).toContain('Bisync successful');
      expect(await serverHashes(`${top}/bisync`)).toEqual(await localTree(local));

      // Local changes: a new file, an edit (new size and mtime).
      await writeFile(path.join(local, 'docs/new-here.md'), random(123));
      await writeFile(path.join(local, 'edit-here.txt'), random(222));
      // Server changes: a new file, a rename, a delete.
      await davPut(davUrl('bisync/from-server.txt'), random(321), Math.floor(T0 / 1000) + 100);
      const server = await serverTree(`${top}/bisync`);
      const renamed = await t.app.inject({
        method: 'PATCH',
        url: `/api/files/${server.get('rename-there.txt')!.id}`,
        headers: owner,
        payload: { name: 'renamed-there.txt' },
      });
      expect(renamed.statusCode, renamed.body).toBe(200);
      const deleted = await t.app.inject({
        method: 'DELETE',
        url: `/api/files/${server.get('delete-there.txt')!.id}`,
        headers: owner,
      });
      expect(deleted.statusCode, deleted.body).toBeLessThan(300);

      // Only the two local changes go up.
      const sent = await putsDuring(async () => {
        const run = await bisync();
        expect(run.stderr).toContain('Bisync successful');
      });
      expect(sent.map((url) => url.slice(url.indexOf(`/${top}/bisync/`))).sort()).toEqual([
        `/${top}/bisync/docs/new-here.md`,
        `/${top}/bisync/edit-here.txt`,
      ]);
      const after = await localTree(local);
      expect([...after.keys()]).toEqual(
        [
          'docs/a.md',
          'docs/b.md',
          'docs/new-here.md',
          'edit-here.txt',
          'from-server.txt',
          'keep.txt',
          'renamed-there.txt',
        ].sort(),
      );
      expect(await serverHashes(`${top}/bisync`)).toEqual(after);

      // Nothing changed since: the next run copies nothing either way.
      const puts = await putsDuring(async () => {
        const quiet = await bisync();
        expect(quiet.stderr).toContain('Bisync successful');
      });
      expect(puts).toEqual([]);
      expect(await serverHashes(`${top}/bisync`)).toEqual(await localTree(local));
    });
  });
});
