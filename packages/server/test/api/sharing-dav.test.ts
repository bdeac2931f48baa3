import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { nextcloudcmd } from '@dfs/cluster/clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import type { MemberRole } from '../../src/repositories/members.ts';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random, sha1 } from '../support/bytes.ts';
import { parseMultistatus } from '../support/multistatus.ts';
import { CHUNK } from '../support/uploads.ts';

type User = Awaited<ReturnType<TestApp['user']>> & { name: string; basic: Record<string, string> };

const OC = 'http://owncloud.org/ns';
const NC = 'http://nextcloud.org/ns';
const PROPS = `<d:propfind xmlns:d="DAV:" xmlns:oc="${OC}" xmlns:nc="${NC}"><d:prop><d:getetag/><d:getcontentlength/><oc:size/><oc:permissions/><oc:owner-id/><oc:owner-display-name/><oc:share-types/><nc:is-mount-root/><nc:mount-type/></d:prop></d:propfind>`;
const TUS = { 'tus-resumable': '1.0.0' };
const b64 = (text: string) => Buffer.from(text).toString('base64');
const run = promisify(execFile);

function zipNames(zip: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true }, (err, file) => {
      if (err || !file) return reject(err);
      const names: string[] = [];
      file.on('entry', (entry: yauzl.Entry) => {
        names.push(entry.fileName);
        file.readEntry();
      });
      file.on('end', () => resolve(names.sort()));
      file.on('error', reject);
      file.readEntry();
    });
  });
}

/**
 * Shares with users and groups over WebDAV (/dav/ and Nextcloud's mounts), Nextcloud's chunked
 * upload, tus and ZIP: a share appears at the top of the recipient's tree, every method obeys
 * the role, and every write lands in the owner's tree under the owner's quota.
 */
describe('shares over WebDAV, chunked upload, tus and ZIP', () => {
  let t: TestApp;
  let olga: User;
  let ed: User;
  let vic: User;
  let team: { id: string };
  const aBytes = random(2000);

  const dav = (
    who: User,
    method: string,
    url: string,
    headers: Record<string, string> = {},
    payload?: string | Buffer,
  ) =>
    t.app.inject({
      method: method as 'GET',
      url,
      headers: { ...who.basic, ...headers },
      ...(payload !== undefined ? { payload } : {}),
    });
  const propfind = async (who: User, url: string, depth = '1') => {
    const res = await dav(who, 'PROPFIND', url, { depth }, PROPS);
    expect(res.statusCode, res.body).toBe(207);
    return parseMultistatus(res.body);
  };
  const etagOf = async (who: User, url: string) =>
    (await propfind(who, url, '0'))[0]!.props.get('{DAV:}getetag');
  const share = async (fileId: string, who: User, role: MemberRole) => {
    const id = randomUUID();
    await t.app.services.repos.members.insert({
      id,
      file_id: fileId,
      owner_id: olga.id,
      user_id: who.id,
      group_id: null,
      role,
      created_at: Date.now(),
    });
    return id;
  };
  const idAt = async (path: string[]) => {
    let parent = '';
    for (const name of path)
      parent = (await t.app.services.repos.files.findLiveByName(olga.id, parent, name))!.id;
    return parent;
  };
  /** Olga's live tree below a folder, as `path:size:sha1`: what a refused request must leave alone. */
  const ownerTree = async (id: string, prefix = ''): Promise<string[]> => {
    const out: string[] = [];
    for (const c of await t.app.services.repos.files.activeChildren(olga.id, [id])) {
      out.push(`${prefix}/${c.name}:${c.kind === 'file' ? c.size : 'dir'}:${c.sha1 ?? ''}`);
      if (c.kind === 'folder') out.push(...(await ownerTree(c.id, `${prefix}/${c.name}`)));
    }
    return out.sort();
  };
  const used = async (who: User) =>
    (await t.app.inject({ url: '/api/auth/me', headers: who.headers })).json().usage.usedBytes as number;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) });
    const make = async (name: string): Promise<User> => {
      const u = await t.user(name);
      const secret = await t.appPassword(u.headers);
      return {
        ...u,
        name,
        basic: { authorization: `Basic ${Buffer.from(`${name}:${secret}`).toString('base64')}` },
      };
    };
    olga = await make('olga');
    ed = await make('eddie');
    vic = await make('vic');
    for (const [method, path, body] of [
      ['MKCOL', '/dav/Team'],
      ['MKCOL', '/dav/Team/sub'],
      ['PUT', '/dav/Team/a.txt', aBytes],
      ['PUT', '/dav/Team/sub/b.txt', 'bee'],
    ] as const) {
      const res = await dav(olga, method, path, {}, body);
      expect(res.statusCode, res.body).toBe(201);
    }
    team = { id: await idAt(['Team']) };
    await share(team.id, ed, 'editor');
    await share(team.id, vic, 'viewer');
  });
  afterAll(async () => {
    await t.close();
  });

  it('a share is a folder at the top of the recipient tree, with Nextcloud permissions and owner', async () => {
    const root = await propfind(vic, '/remote.php/dav/files/vic/');
    const mount = root.find((e) => e.href === '/remote.php/dav/files/vic/Team/')!;
    expect(mount, root.map((e) => e.href).join()).toBeDefined();
    expect(mount.props.get(`{${OC}}permissions`)).toBe('SMGD');
    expect(mount.props.get(`{${OC}}owner-id`)).toBe('olga');
    expect(mount.props.get(`{${NC}}is-mount-root`)).toBe('true');
    expect(mount.props.get(`{${NC}}mount-type`)).toBe('shared');
    expect(mount.props.get('{DAV:}getetag')).toBe(await etagOf(olga, '/dav/Team/'));
    expect(mount.props.get(`{${OC}}size`)).toBe(String(aBytes.length + 3));
    // Inside, entries are the owner's, read-only for a viewer, writable for an editor.
    const inside = await propfind(vic, '/dav/Team/');
    const a = inside.find((e) => e.href === '/dav/Team/a.txt')!;
    expect(a.props.get(`{${OC}}permissions`)).toBe('SMG');
    expect(a.props.get('{DAV:}getetag')).toBe(`"${sha1(aBytes)}"`);
    const edRoot = await propfind(ed, '/remote.php/webdav/');
    expect(edRoot.find((e) => e.href === '/remote.php/webdav/Team/')!.props.get(`{${OC}}permissions`)).toBe(
      'SMGDCK',
    );
    const edInside = await propfind(ed, '/dav/Team/');
    expect(edInside.find((e) => e.href === '/dav/Team/a.txt')!.props.get(`{${OC}}permissions`)).toBe(
      'SMGDNVW',
    );
    expect(edInside.find((e) => e.href === '/dav/Team/sub/')!.props.get(`{${OC}}permissions`)).toBe(
      'SMGDNVCK',
    );
    // Olga's own entries stay hers, with every right.
    const own = await propfind(olga, '/dav/');
    expect(own.find((e) => e.href === '/dav/Team/')!.props.get(`{${OC}}permissions`)).toBe('RGDNVCK');
    // Nextcloud's share types: what the user shares (0: with a user), never a recipient's.
    expect(own.find((e) => e.href === '/dav/Team/')!.props.get(`{${OC}}share-types`)).toBe(
      `{${OC}}share-type=0`,
    );
    expect(mount.props.get(`{${OC}}share-types`)).toBe('');
    expect(inside.find((e) => e.href === '/dav/Team/sub/')!.props.get(`{${OC}}share-types`)).toBe('');
    const get = await dav(vic, 'GET', '/dav/Team/a.txt');
    expect(get.statusCode).toBe(200);
    expect(get.rawPayload.equals(aBytes)).toBe(true);
    expect((await dav(vic, 'GET', '/dav/Team/sub/b.txt')).body).toBe('bee');
  });

  it('a folder inside a viewed share, shared again as editor, is writable through the outer path', async () => {
    const sub = await idAt(['Team', 'sub']);
    const member = await share(sub, vic, 'editor');
    const inside = await propfind(vic, '/dav/Team/');
    expect(inside.find((e) => e.href === '/dav/Team/sub/')!.props.get(`{${OC}}permissions`)).toBe('SMGCK');
    expect(inside.find((e) => e.href === '/dav/Team/a.txt')!.props.get(`{${OC}}permissions`)).toBe('SMG');
    expect(await dav(vic, 'PUT', '/dav/Team/sub/by-vic.txt', {}, 'v')).toHaveProperty('statusCode', 201);
    expect(await dav(vic, 'PUT', '/dav/Team/by-vic.txt', {}, 'v')).toHaveProperty('statusCode', 403);
    expect(await dav(vic, 'DELETE', '/dav/Team/sub/by-vic.txt')).toHaveProperty('statusCode', 204);
    await t.app.services.repos.members.delete(member);
  });

  it("an entry shared on its own stays its owner's to delete or move, reached through an outer path too", async () => {
    const sub = await idAt(['Team', 'sub']);
    const member = await share(sub, vic, 'editor');
    const before = await ownerTree(team.id);
    // Vic views Team and edits Team/sub: its contents are hers to change, sub itself is not.
    const rest = await t.app.inject({ method: 'DELETE', url: `/api/files/${sub}`, headers: vic.headers });
    expect(rest.statusCode).toBe(403);
    const deleted = await dav(vic, 'DELETE', '/dav/Team/sub');
    expect(deleted.statusCode).toBe(403);
    expect(errorCode(deleted)).toBe('forbidden');
    // Nor moved out of the share into another folder of the owner's that she edits.
    expect(await dav(olga, 'MKCOL', '/dav/Other')).toHaveProperty('statusCode', 201);
    const otherMember = await share(await idAt(['Other']), vic, 'editor');
    const moved = await dav(vic, 'MOVE', '/dav/Team/sub', {
      destination: '/dav/Other/sub',
      overwrite: 'F',
    });
    expect(moved.statusCode).toBe(403);
    expect(await ownerTree(team.id)).toEqual(before);
    await t.app.services.repos.members.delete(member);
    await t.app.services.repos.members.delete(otherMember);
    expect(await dav(olga, 'DELETE', '/dav/Other')).toHaveProperty('statusCode', 204);
  });

  it("the recipient's root ETag changes when anything inside a share changes, and when a share comes or goes", async () => {
    const before = await etagOf(vic, '/dav/');
    const ncBefore = await etagOf(vic, '/remote.php/dav/files/vic/');
    expect(await dav(olga, 'PUT', '/dav/Team/sub/deep.txt', {}, 'deep')).toHaveProperty('statusCode', 201);
    const afterWrite = await etagOf(vic, '/dav/');
    expect(afterWrite).not.toBe(before);
    expect(await etagOf(vic, '/remote.php/dav/files/vic/')).not.toBe(ncBefore);
    // Nothing changed: the same ETag.
    expect(await etagOf(vic, '/dav/')).toBe(afterWrite);
    expect(await dav(olga, 'MKCOL', '/dav/Extra')).toHaveProperty('statusCode', 201);
    const extra = await share(await idAt(['Extra']), vic, 'viewer');
    const afterMount = await etagOf(vic, '/dav/');
    expect(afterMount).not.toBe(afterWrite);
    // A role changed is a change of the tree too (what the client may do there).
    await t.app.services.repos.members.setRole(extra, 'editor');
    const afterRole = await etagOf(vic, '/dav/');
    expect(afterRole).not.toBe(afterMount);
    await t.app.services.repos.members.delete(extra);
    expect(await etagOf(vic, '/dav/')).not.toBe(afterRole);
    expect(await dav(olga, 'DELETE', '/dav/Team/sub/deep.txt')).toHaveProperty('statusCode', 204);
  });

  it('a viewer is refused every write (403), and nothing changes in the owner tree', async () => {
    const before = await ownerTree(team.id);
    const origin = 'http://localhost';
    const attempts: Array<[string, string, Record<string, string>, string?]> = [
      ['PUT', '/dav/Team/new.txt', {}, 'new'],
      ['PUT', '/dav/Team/a.txt', {}, 'over'],
      ['MKCOL', '/dav/Team/made', {}],
      ['DELETE', '/dav/Team/a.txt', {}],
      ['DELETE', '/dav/Team/sub', {}],
      ['MOVE', '/dav/Team/a.txt', { destination: `${origin}/dav/Team/sub/a.txt` }],
      ['COPY', '/dav/Team/a.txt', { destination: `${origin}/dav/Team/sub/a2.txt` }],
      [
        'PROPPATCH',
        '/dav/Team/a.txt',
        {},
        '<d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:x"><d:set><d:prop><x:tag>1</x:tag></d:prop></d:set></d:propertyupdate>',
      ],
      [
        'LOCK',
        '/dav/Team/a.txt',
        {},
        '<d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockinfo>',
      ],
      [
        'LOCK',
        '/dav/Team/locked.txt',
        {},
        '<d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockinfo>',
      ],
    ];
    for (const [method, url, headers, body] of attempts) {
      const res = await dav(vic, method, url, headers, body);
      expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(403);
      expect(errorCode(res), `${method} ${url}`).toBe('forbidden');
    }
    // A copy out of the share into the viewer's own files is a read: allowed.
    const copy = await dav(vic, 'COPY', '/dav/Team/a.txt', { destination: `${origin}/dav/mine.txt` });
    expect(copy.statusCode, copy.body).toBe(201);
    expect((await dav(vic, 'GET', '/dav/mine.txt')).rawPayload.equals(aBytes)).toBe(true);
    expect(await ownerTree(team.id)).toEqual(before);
    expect(await t.app.services.repos.davProperties.list(await idAt(['Team', 'a.txt']))).toEqual([]);
  });

  it("an editor writes inside: PUT, MKCOL, MOVE, COPY and DELETE land in the owner's tree, under the owner's quota", async () => {
    const olgaBefore = await used(olga);
    const edBefore = await used(ed);
    const data = random(5000);
    expect(await dav(ed, 'PUT', '/dav/Team/new.bin', {}, data)).toHaveProperty('statusCode', 201);
    expect(await used(olga)).toBe(olgaBefore + data.length);
    expect(await used(ed)).toBe(edBefore);
    expect(await dav(ed, 'MKCOL', '/dav/Team/made')).toHaveProperty('statusCode', 201);
    const move = await dav(ed, 'MOVE', '/dav/Team/new.bin', {
      destination: 'http://localhost/dav/Team/made/moved.bin',
    });
    expect(move.statusCode, move.body).toBe(201);
    const copy = await dav(ed, 'COPY', '/dav/Team/sub', {
      destination: 'http://localhost/dav/Team/made/sub2',
    });
    expect(copy.statusCode, copy.body).toBe(201);
    const replace = await dav(ed, 'PUT', '/dav/Team/made/sub2/b.txt', {}, 'BEE!');
    expect(replace.statusCode, replace.body).toBe(204);
    expect(await dav(ed, 'DELETE', '/dav/Team/made/sub2')).toHaveProperty('statusCode', 204);
    expect(await ownerTree(await idAt(['Team', 'made']))).toEqual([
      `/moved.bin:${data.length}:${sha1(data)}`,
    ]);
    // The owner sees the member's change in their history, named.
    const history = (await t.app.inject({ url: '/api/history?limit=50', headers: olga.headers })).json() as {
      items: Array<{ path: string | null; actor: { username?: string } | null }>;
    };
    expect(history.items.find((e) => e.path?.endsWith('moved.bin'))?.actor?.username).toBe('eddie');
    // A shared folder's owner quota counts: past it, the editor's PUT is refused.
    await t.app.services.repos.users.setQuota(olga.id, (await used(olga)) + 100);
    // What a client reads before it uploads: the room in the owner's quota, not the editor's own.
    const quota = await dav(
      ed,
      'PROPFIND',
      '/dav/Team/',
      { depth: '0' },
      '<d:propfind xmlns:d="DAV:"><d:prop><d:quota-available-bytes/></d:prop></d:propfind>',
    );
    expect(parseMultistatus(quota.body)[0]!.props.get('{DAV:}quota-available-bytes')).toBe('100');
    const over = await dav(ed, 'PUT', '/dav/Team/too-big.bin', { 'content-length': '1000' }, random(1000));
    expect(over.statusCode, over.body).toBe(413);
    expect(errorCode(over)).toBe('quota_exceeded');
    await t.app.services.repos.users.setQuota(olga.id, null);
  });

  it('the mount itself cannot be renamed, and MOVE between owners is refused; COPY between them works', async () => {
    const before = await ownerTree(team.id);
    const rename = await dav(ed, 'MOVE', '/dav/Team', { destination: 'http://localhost/dav/Renamed' });
    expect(rename.statusCode, rename.body).toBe(403);
    const out = await dav(ed, 'MOVE', '/dav/Team/a.txt', { destination: 'http://localhost/dav/a.txt' });
    expect(out.statusCode, out.body).toBe(403);
    expect(out.json().error.message).toMatch(/different owners/);
    expect(await dav(ed, 'PUT', '/dav/own.txt', {}, 'mine')).toHaveProperty('statusCode', 201);
    const into = await dav(ed, 'MOVE', '/dav/own.txt', { destination: 'http://localhost/dav/Team/own.txt' });
    expect(into.statusCode, into.body).toBe(403);
    expect(await ownerTree(team.id)).toEqual(before);
    expect((await dav(ed, 'GET', '/dav/own.txt')).body).toBe('mine');
    // Copies: into the share (the owner's quota) and out of it (the editor's).
    const olgaBefore = await used(olga);
    const copyIn = await dav(ed, 'COPY', '/dav/own.txt', {
      destination: 'http://localhost/dav/Team/own.txt',
    });
    expect(copyIn.statusCode, copyIn.body).toBe(201);
    expect(await used(olga)).toBe(olgaBefore + 4);
    const copyOut = await dav(ed, 'COPY', '/dav/Team/sub', { destination: 'http://localhost/dav/sub-copy' });
    expect(copyOut.statusCode, copyOut.body).toBe(201);
    expect((await dav(ed, 'GET', '/dav/sub-copy/b.txt')).body).toBe('bee');
    expect(await dav(ed, 'DELETE', '/dav/Team/own.txt')).toHaveProperty('statusCode', 204);
  });

  it('DELETE of the mount leaves the share: gone from the recipient tree, the owner folder stays', async () => {
    expect(await dav(olga, 'MKCOL', '/dav/Left')).toHaveProperty('statusCode', 201);
    expect(await dav(olga, 'PUT', '/dav/Left/x.txt', {}, 'x')).toHaveProperty('statusCode', 201);
    const left = await idAt(['Left']);
    await share(left, vic, 'editor');
    await share(left, ed, 'viewer');
    expect((await dav(vic, 'GET', '/dav/Left/x.txt')).body).toBe('x');
    const before = await etagOf(vic, '/dav/');
    expect(await dav(vic, 'DELETE', '/dav/Left')).toHaveProperty('statusCode', 204);
    expect((await propfind(vic, '/dav/')).map((e) => e.href)).not.toContain('/dav/Left/');
    expect(await dav(vic, 'GET', '/dav/Left/x.txt')).toHaveProperty('statusCode', 404);
    expect(await etagOf(vic, '/dav/')).not.toBe(before);
    expect(await ownerTree(left)).toEqual([`/x.txt:1:${sha1(Buffer.from('x'))}`]);
    // A share with the user alone is removed: the owner sees them gone; the others keep theirs.
    const members = await t.app.services.repos.members.listFor(left);
    expect(members.map((m) => m.user_id)).toEqual([ed.id]);
    // A group's share is left by one member only: the group's other members keep it.
    const repos = t.app.services.repos;
    const group = { id: randomUUID(), name: 'crew', source: 'local' as const, created_at: Date.now() };
    await repos.groups.insert(group);
    for (const u of [vic, ed])
      await repos.groups.addMember({
        group_id: group.id,
        user_id: u.id,
        source: 'local',
        created_at: Date.now(),
      });
    const groupShare = randomUUID();
    await repos.members.insert({
      id: groupShare,
      file_id: left,
      owner_id: olga.id,
      user_id: null,
      group_id: group.id,
      role: 'viewer',
      created_at: Date.now(),
    });
    expect((await dav(vic, 'GET', '/dav/Left/x.txt')).body).toBe('x');
    // ed is reached twice (directly and through the group): leaving drops both.
    expect(await dav(ed, 'DELETE', '/dav/Left')).toHaveProperty('statusCode', 204);
    expect(await dav(ed, 'GET', '/dav/Left/x.txt')).toHaveProperty('statusCode', 404);
    expect((await dav(vic, 'GET', '/dav/Left/x.txt')).body).toBe('x');
    expect((await repos.members.listFor(left)).map((m) => m.id)).toEqual([groupShare]);
    // Shared with a group only now: Nextcloud's share type 1.
    const own = await propfind(olga, '/dav/');
    expect(own.find((e) => e.href === '/dav/Left/')!.props.get(`{${OC}}share-types`)).toBe(
      `{${OC}}share-type=1`,
    );
    expect(await ownerTree(left)).toEqual([`/x.txt:1:${sha1(Buffer.from('x'))}`]);
  });

  it("Nextcloud chunked upload v2 into a shared folder: the editor's file is the owner's; a viewer is refused at MKCOL", async () => {
    const data = random(CHUNK + 1234);
    const uploads = '/remote.php/dav/uploads/eddie/4711';
    const destination = 'http://localhost/remote.php/dav/files/eddie/Team/sub/chunked.bin';
    const olgaBefore = await used(olga);
    const mk = await dav(ed, 'MKCOL', uploads, { destination, 'oc-total-length': String(data.length) });
    expect(mk.statusCode, mk.body).toBe(201);
    for (const [i, piece] of [data.subarray(0, CHUNK), data.subarray(CHUNK)].entries()) {
      const put = await dav(ed, 'PUT', `${uploads}/0000${i + 1}`, { destination }, piece);
      expect(put.statusCode, put.body).toBe(201);
    }
    const move = await dav(ed, 'MOVE', `${uploads}/.file`, {
      destination,
      'oc-total-length': String(data.length),
      'oc-checksum': `SHA1:${sha1(data)}`,
    });
    expect(move.statusCode, move.body).toBe(201);
    expect(move.headers.etag).toBe(`"${sha1(data)}"`);
    expect(await ownerTree(await idAt(['Team', 'sub']))).toContain(
      `/chunked.bin:${data.length}:${sha1(data)}`,
    );
    expect(await used(olga)).toBe(olgaBefore + data.length);
    expect(
      (await dav(ed, 'GET', '/remote.php/dav/files/eddie/Team/sub/chunked.bin')).rawPayload.equals(data),
    ).toBe(true);
    const refused = await dav(vic, 'MKCOL', '/remote.php/dav/uploads/vic/4712', {
      destination: 'http://localhost/remote.php/dav/files/vic/Team/sub/nope.bin',
      'oc-total-length': '10',
    });
    expect(refused.statusCode, refused.body).toBe(403);
    expect(await dav(olga, 'DELETE', '/dav/Team/sub/chunked.bin')).toHaveProperty('statusCode', 204);
  });

  it('tus into a shared folder: resumable by the editor, charged to the owner; a viewer is refused at creation', async () => {
    const sub = await idAt(['Team', 'sub']);
    const data = random(CHUNK + 500);
    const meta = `filename ${b64('tus.bin')},parentId ${b64(sub)}`;
    const refused = await t.app.inject({
      method: 'POST',
      url: '/api/tus/',
      headers: { ...vic.headers, ...TUS, 'upload-length': String(data.length), 'upload-metadata': meta },
    });
    expect(refused.statusCode, refused.body).toBe(403);
    const olgaBefore = await used(olga);
    const made = await t.app.inject({
      method: 'POST',
      url: '/api/tus/',
      headers: { ...ed.headers, ...TUS, 'upload-length': String(data.length), 'upload-metadata': meta },
    });
    expect(made.statusCode, made.body).toBe(201);
    const url = new URL(made.headers.location as string).pathname;
    const patch = (offset: number, body: Buffer) =>
      t.app.inject({
        method: 'PATCH',
        url,
        headers: {
          ...ed.headers,
          ...TUS,
          'content-type': 'application/offset+octet-stream',
          'upload-offset': String(offset),
        },
        payload: body,
      });
    expect(await patch(0, data.subarray(0, 700))).toHaveProperty('statusCode', 204);
    const head = await t.app.inject({ method: 'HEAD', url, headers: { ...ed.headers, ...TUS } });
    expect(head.headers['upload-offset']).toBe('700');
    // Someone else cannot reach the session.
    expect(await t.app.inject({ method: 'HEAD', url, headers: { ...vic.headers, ...TUS } })).toHaveProperty(
      'statusCode',
      404,
    );
    expect(await patch(700, data.subarray(700))).toHaveProperty('statusCode', 204);
    expect(await ownerTree(sub)).toContain(`/tus.bin:${data.length}:${sha1(data)}`);
    expect(await used(olga)).toBe(olgaBefore + data.length);
  });

  it('ZIP: a recipient downloads a shared folder; mixing own and shared entries is refused', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/archives',
      headers: vic.headers,
      payload: { ids: [team.id] },
    });
    expect(res.statusCode, res.body).toBe(201);
    const zip = await t.app.inject({ url: res.json().url, headers: vic.headers });
    expect(zip.statusCode).toBe(200);
    const names = await zipNames(zip.rawPayload);
    expect(names).toContain('Team/a.txt');
    expect(names).toContain('Team/sub/b.txt');
    const mine = (await t.app.inject({ url: '/api/files', headers: vic.headers }))
      .json()
      .items.find((e: { name: string }) => e.name === 'mine.txt') as { id: string };
    const mixed = await t.app.inject({
      method: 'POST',
      url: '/api/archives',
      headers: vic.headers,
      payload: { ids: [team.id, mine.id] },
    });
    expect(mixed.statusCode, mixed.body).toBe(400);
    // Someone the folder is not shared with: 404, as if it did not exist.
    const stranger = await t.user('stranger');
    const notShared = await t.app.inject({
      method: 'POST',
      url: '/api/archives',
      headers: stranger.headers,
      payload: { ids: [team.id] },
    });
    expect(notShared.statusCode).toBe(404);
  });

  it("versions of a shared file: a viewer lists and downloads them; restore is an editor's, delete the owner's", async () => {
    const newer = random(1500);
    expect(await dav(olga, 'PUT', '/dav/Team/a.txt', {}, newer)).toHaveProperty('statusCode', 204);
    const idProp = `<d:propfind xmlns:d="DAV:" xmlns:oc="${OC}"><d:prop><oc:fileid/></d:prop></d:propfind>`;
    const listed = await dav(vic, 'PROPFIND', '/remote.php/dav/files/vic/Team/a.txt', { depth: '0' }, idProp);
    const fileId = parseMultistatus(listed.body)[0]!.props.get(`{${OC}}fileid`)!;
    const folder = `/remote.php/dav/versions/vic/versions/${fileId}`;
    const versions = await dav(vic, 'PROPFIND', `${folder}/`, { depth: '1' });
    expect(versions.statusCode, versions.body).toBe(207);
    const hrefs = parseMultistatus(versions.body)
      .map((e) => e.href)
      .filter((h) => !h.endsWith('/'));
    expect(hrefs).toHaveLength(1);
    const old = await dav(vic, 'GET', hrefs[0]!);
    expect(old.statusCode).toBe(200);
    expect(old.rawPayload.equals(aBytes)).toBe(true);
    const restoreTo = { destination: 'http://localhost/remote.php/dav/versions/vic/restore/target' };
    expect(await dav(vic, 'MOVE', hrefs[0]!, restoreTo)).toHaveProperty('statusCode', 403);
    expect(await dav(vic, 'DELETE', hrefs[0]!)).toHaveProperty('statusCode', 403);
    // Someone the file is not shared with does not find it.
    const stranger = await t.user('nobody');
    const secret = await t.appPassword(stranger.headers);
    const strangerRes = await t.app.inject({
      method: 'PROPFIND',
      url: `/remote.php/dav/versions/nobody/versions/${fileId}/`,
      headers: { authorization: `Basic ${Buffer.from(`nobody:${secret}`).toString('base64')}`, depth: '1' },
    });
    expect(strangerRes.statusCode).toBe(404);
    // The editor restores the old content: the owner's file has it again.
    const edVersion = hrefs[0]!.replace('/versions/vic/', '/versions/eddie/');
    const restore = await dav(ed, 'MOVE', edVersion, {
      destination: 'http://localhost/remote.php/dav/versions/eddie/restore/target',
    });
    expect(restore.statusCode, restore.body).toBe(204);
    expect((await dav(olga, 'GET', '/dav/Team/a.txt')).rawPayload.equals(aBytes)).toBe(true);
  });

  // A real client once (the protocol is the same on either database).
  it.skipIf(process.env.DFS_TEST_DB === 'mysql')(
    'rclone (Nextcloud remote) syncs into a shared folder as the editor; as a viewer it cannot',
    async () => {
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const port = (t.app.server.address() as AddressInfo).port;
      const tmp = await mkdtemp(path.join(os.tmpdir(), 'dfs-share-rclone-'));
      try {
        const remote = async (who: User) => {
          const secret = await t.appPassword(who.headers, 'rclone');
          return {
            ...process.env,
            RCLONE_CONFIG: path.join(tmp, 'rclone.conf'),
            RCLONE_CONFIG_DFS_TYPE: 'webdav',
            RCLONE_CONFIG_DFS_URL: `http://127.0.0.1:${port}/remote.php/dav/files/${who.name}/`,
            RCLONE_CONFIG_DFS_VENDOR: 'nextcloud',
            RCLONE_CONFIG_DFS_USER: who.name,
            RCLONE_CONFIG_DFS_PASS: (await run('rclone', ['obscure', secret])).stdout.trim(),
          };
        };
        await writeFile(path.join(tmp, 'rclone.conf'), '');
        const local = path.join(tmp, 'up');
        const made = new Map([
          ['one.txt', random(1000)],
          ['deeper/two.bin', random(70_000)],
        ]);
        for (const [name, data] of made) {
          await mkdir(path.dirname(path.join(local, name)), { recursive: true });
          await writeFile(path.join(local, name), data);
        }
        const edEnv = await remote(ed);
        await run('rclone', ['sync', local, 'dfs:Team/synced'], { env: edEnv });
        const synced = await idAt(['Team', 'synced']);
        expect(await ownerTree(synced)).toEqual(
          [
            '/deeper:dir:',
            ...[...made].map(([name, data]) => `/${name}:${data.length}:${sha1(data)}`),
          ].sort(),
        );
        const back = path.join(tmp, 'back');
        await run('rclone', ['copy', 'dfs:Team/synced', back], { env: edEnv });
        for (const [name, data] of made)
          expect((await readFile(path.join(back, name))).equals(data)).toBe(true);
        const vicEnv = await remote(vic);
        await expect(
          run('rclone', ['copy', local, 'dfs:Team/refused', '--retries', '1'], { env: vicEnv }),
        ).rejects.toThrow();
        expect(await t.app.services.repos.files.findLiveByName(olga.id, team.id, 'refused')).toBeUndefined();
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(process.env.DFS_TEST_DB === 'mysql')(
    "nextcloudcmd syncs a share down and an editor's new file up; a viewer's stays local",
    async () => {
      if (!t.app.server.listening) await t.app.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
      const tmp = await mkdtemp(path.join(os.tmpdir(), 'dfs-share-ncc-'));
      try {
        const sync = async (who: User, dir: string) =>
          nextcloudcmd({
            dir,
            url,
            user: who.name,
            password: await t.appPassword(who.headers, 'Nextcloud sync client'),
            home: tmp,
            timeoutMs: 60_000,
          });
        const edDir = path.join(tmp, 'ed');
        await mkdir(edDir);
        const first = await sync(ed, edDir);
        expect(first.code, first.output.slice(-2000)).toBe(0);
        expect(await readFile(path.join(edDir, 'Team', 'sub', 'b.txt'), 'utf8')).toBe('bee');
        const data = random(4000);
        await writeFile(path.join(edDir, 'Team', 'from-client.bin'), data);
        const second = await sync(ed, edDir);
        expect(second.code, second.output.slice(-2000)).toBe(0);
        expect(await ownerTree(team.id)).toContain(`/from-client.bin:${data.length}:${sha1(data)}`);
        // A viewer's client keeps a new local file local: the share's letters say it cannot add.
        const vicDir = path.join(tmp, 'vic');
        await mkdir(vicDir);
        await sync(vic, vicDir);
        expect((await readFile(path.join(vicDir, 'Team', 'a.txt'))).length).toBeGreaterThan(0);
        await writeFile(path.join(vicDir, 'Team', 'viewer.txt'), 'nope');
        await sync(vic, vicDir);
        expect(
          await t.app.services.repos.files.findLiveByName(olga.id, team.id, 'viewer.txt'),
        ).toBeUndefined();
        expect(await dav(olga, 'DELETE', '/dav/Team/from-client.bin')).toHaveProperty('statusCode', 204);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    },
  );

  it("a PUT whose body streams while the share is revoked adds nothing to the owner's tree", async () => {
    expect(await dav(olga, 'MKCOL', '/dav/Inflight')).toHaveProperty('statusCode', 201);
    const folderId = await idAt(['Inflight']);
    const member = await share(folderId, ed, 'editor');
    const body = new PassThrough();
    const answer = t.app.inject({
      method: 'PUT',
      url: '/dav/Inflight/streamed.bin',
      headers: { ...ed.basic, 'content-type': 'application/octet-stream' },
      payload: body,
    });
    body.write(random(1024));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await t.app.services.repos.members.delete(member);
    body.end(random(64 * 1024));
    const res = await answer;
    expect(res.statusCode, res.body).toBe(409);
    expect(await ownerTree(folderId)).toEqual([]);
    expect(await dav(olga, 'DELETE', '/dav/Inflight')).toHaveProperty('statusCode', 204);
  });

  it('revocation takes effect on the next request: 404 on every path of the share', async () => {
    const zip = await t.app.inject({
      method: 'POST',
      url: '/api/archives',
      headers: ed.headers,
      payload: { ids: [team.id] },
    });
    expect(zip.statusCode).toBe(201);
    expect(await dav(ed, 'GET', '/dav/Team/a.txt')).toHaveProperty('statusCode', 200);
    // A tus upload into the share, under way: its first bytes acknowledged before the revocation.
    const made = await t.app.inject({
      method: 'POST',
      url: '/api/tus/',
      headers: {
        ...ed.headers,
        ...TUS,
        'upload-length': '10',
        'upload-metadata': `filename ${b64('late.bin')},parentId ${b64(team.id)}`,
      },
    });
    expect(made.statusCode, made.body).toBe(201);
    const tusUrl = new URL(made.headers.location as string).pathname;
    const patch = (offset: number, payload: Buffer) =>
      t.app.inject({
        method: 'PATCH',
        url: tusUrl,
        headers: {
          ...ed.headers,
          ...TUS,
          'content-type': 'application/offset+octet-stream',
          'upload-offset': String(offset),
        },
        payload,
      });
    const late = random(10);
    expect(await patch(0, late.subarray(0, 4))).toHaveProperty('statusCode', 204);
    const members = await t.app.services.repos.members.listFor(team.id);
    await t.app.services.repos.members.delete(members.find((m) => m.user_id === ed.id)!.id);
    expect(await dav(ed, 'GET', '/dav/Team/a.txt')).toHaveProperty('statusCode', 404);
    // The session is the editor's and so are its bytes: it goes on, as the REST chunked upload
    // does, and the file lands at the editor's own root, never in the owner's folder.
    const head = await t.app.inject({ method: 'HEAD', url: tusUrl, headers: { ...ed.headers, ...TUS } });
    expect(head.statusCode).toBe(200);
    expect(head.headers['upload-offset']).toBe('4');
    expect(await patch(4, late.subarray(4))).toHaveProperty('statusCode', 204);
    const landed = await t.app.services.repos.files.findLiveByName(ed.id, '', 'late.bin');
    expect(landed?.user_id).toBe(ed.id);
    const got = await dav(ed, 'GET', '/dav/late.bin');
    expect(got.statusCode).toBe(200);
    expect(sha1(got.rawPayload)).toBe(sha1(late));
    expect(await dav(ed, 'PROPFIND', '/dav/Team/', { depth: '0' })).toHaveProperty('statusCode', 404);
    expect(await dav(ed, 'PUT', '/dav/Team/late.txt', {}, 'late')).toHaveProperty('statusCode', 409);
    expect((await propfind(ed, '/dav/')).map((e) => e.href)).not.toContain('/dav/Team/');
    // An archive asked for before the revocation no longer opens.
    expect(await t.app.inject({ url: zip.json().url, headers: ed.headers })).toHaveProperty(
      'statusCode',
      404,
    );
    expect(await ownerTree(team.id)).not.toContainEqual(expect.stringMatching(/late/));
  });
});
