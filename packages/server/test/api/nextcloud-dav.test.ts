import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/knex.ts';
import { migrationSource } from '../../src/db/migrations.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { databaseBefore, testDatabaseUrl } from '../support/db.ts';
import { parseMultistatus } from '../support/multistatus.ts';
import { postForm, uploader } from '../support/uploads.ts';

const OC = 'http://owncloud.org/ns';
const NC = 'http://nextcloud.org/ns';
const XML_TYPE = 'application/xml; charset=utf-8';

/** The discovery PROPFIND of Nextcloud's desktop client, plus what its current version and the mobile apps add. */
const DISCOVERY = `<?xml version="1.0" ?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">
  <d:prop>
    <d:resourcetype /><d:getlastmodified /><d:getcontentlength /><d:getcontenttype /><d:getetag />
    <oc:size /><oc:id /><oc:fileid /><oc:downloadURL /><oc:dDC /><oc:permissions />
    <oc:checksums /><oc:data-fingerprint /><oc:share-types />
    <d:quota-available-bytes /><d:quota-used-bytes />
    <has-preview xmlns="http://nextcloud.org/ns" />
  </d:prop>
</d:propfind>`;

const sha1 = (data: Buffer | string) => createHash('sha1').update(data).digest('hex');

describe('Nextcloud WebDAV dialect at /remote.php', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let basic: Record<string, string>;
  const FILES = '/remote.php/dav/files/alice';

  beforeAll(async () => {
    t = await startTestApp();
    alice = await t.user('alice');
    await t.user('bob');
    const secret = await t.appPassword(alice.headers, 'nextcloud');
    basic = { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}` };
  });
  afterAll(() => t.close());

  const dav = (
    method: string,
    url: string,
    headers: Record<string, string> = {},
    payload?: string | Buffer,
  ) =>
    t.app.inject({
      method: method as 'GET',
      url,
      headers: { ...basic, ...headers },
      ...(payload !== undefined ? { payload } : {}),
    });
  const propfind = async (url: string, depth = '1', body = DISCOVERY) => {
    const res = await dav('PROPFIND', url, { depth, 'content-type': 'text/xml; charset=utf-8' }, body);
    expect(res.statusCode, res.body).toBe(207);
    expect(res.headers['content-type']).toBe(XML_TYPE);
    return parseMultistatus(res.body);
  };
  const one = async (url: string) => (await propfind(url, '0'))[0]!;
  const etag = async (url: string) => (await one(url)).props.get('{DAV:}getetag')!;

  it('serves one tree at /dav/, /remote.php/webdav/ and /remote.php/dav/files/<user>/', async () => {
    expect((await dav('MKCOL', `${FILES}/same`)).statusCode).toBe(201);
    expect((await dav('PUT', '/remote.php/webdav/same/a.txt', {}, 'alpha')).statusCode).toBe(201);
    expect((await dav('PUT', '/dav/same/b.txt', {}, 'beta')).statusCode).toBe(201);
    const listings = await Promise.all(
      ['/dav', '/remote.php/webdav', FILES].map(async (mount) => {
        const entries = await propfind(`${mount}/same/`);
        for (const e of entries) expect(e.href.startsWith(`${mount}/same/`), e.href).toBe(true);
        return entries.map((e) => ({
          path: e.href.slice(mount.length),
          etag: e.props.get('{DAV:}getetag'),
          id: e.props.get(`{${OC}}id`),
        }));
      }),
    );
    expect(listings[0]!.map((e) => e.path)).toEqual(['/same/', '/same/a.txt', '/same/b.txt']);
    expect(listings[1]).toEqual(listings[0]);
    expect(listings[2]).toEqual(listings[0]);
    expect((await dav('GET', `${FILES}/same/b.txt`)).body).toBe('beta');
    // A MOVE from one mount to another is within the same tree.
    const moved = await dav('MOVE', `${FILES}/same/a.txt`, {
      destination: 'http://localhost:80/remote.php/webdav/same/c.txt',
    });
    expect(moved.statusCode, moved.body).toBe(201);
    expect((await dav('GET', '/dav/same/c.txt')).body).toBe('alpha');
  });

  it("refuses another user's files mount with 404, as a destination too", async () => {
    const res = await dav('PROPFIND', '/remote.php/dav/files/bob/', { depth: '0' });
    expect(res.statusCode).toBe(404);
    expect((await dav('GET', '/remote.php/dav/files/bob/same/b.txt')).statusCode).toBe(404);
    expect((await dav('PUT', '/remote.php/dav/files/bob/x.txt', {}, 'x')).statusCode).toBe(404);
    const move = await dav('MOVE', `${FILES}/same/b.txt`, {
      destination: 'http://localhost:80/remote.php/dav/files/bob/b.txt',
    });
    expect(move.statusCode).toBe(403);
    expect((await dav('GET', '/dav/same/b.txt')).body).toBe('beta');
    // Without credentials: the challenge, as on /dav/.
    const anonymous = await t.app.inject({
      method: 'PROPFIND' as 'GET',
      url: `${FILES}/`,
      headers: { depth: '0' },
    });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Basic /);
  });

  it('answers the properties sync clients ask for, in their formats', async () => {
    expect((await dav('MKCOL', `${FILES}/props`)).statusCode).toBe(201);
    expect((await dav('MKCOL', `${FILES}/props/deep`)).statusCode).toBe(201);
    const text = Buffer.from('hello nextcloud\n');
    const put = await dav('PUT', `${FILES}/props/hello.txt`, { 'content-type': 'text/plain' }, text);
    expect(put.statusCode).toBe(201);
    expect((await dav('PUT', `${FILES}/props/deep/pic.png`, {}, Buffer.alloc(300, 1))).statusCode).toBe(201);

    const [first, ...members] = await propfind(`${FILES}/props/`);
    const folder = first!;
    const file = members.find((m) => m.href.endsWith('/hello.txt'))!;
    const deep = members.find((m) => m.href.endsWith('/deep/'))!;
    const png = (await propfind(`${FILES}/props/deep/`)).find((m) => m.href.endsWith('/pic.png'))!;

    expect(file.props.get('{DAV:}getetag')).toBe(`"${sha1(text)}"`);
    expect(file.props.get('{DAV:}getcontentlength')).toBe(String(text.length));
    expect(file.props.get('{DAV:}getcontenttype')).toBe('text/plain');
    expect(file.props.get('{DAV:}getlastmodified')).toMatch(
      /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/,
    );
    expect(file.props.get('{DAV:}resourcetype')).toBe('');
    expect(file.props.get(`{${OC}}permissions`)).toBe('RGDNVW');
    expect(file.props.get(`{${OC}}size`)).toBe(String(text.length));
    expect(file.props.get(`{${OC}}checksums`)).toBe(`{${OC}}checksum=SHA1:${sha1(text)}`);
    expect(file.props.get(`{${NC}}has-preview`)).toBe('false');
    expect(png.props.get(`{${NC}}has-preview`)).toBe('true');
    const fileId = file.props.get(`{${OC}}fileid`)!;
    expect(fileId).toMatch(/^\d+$/);
    expect(BigInt(fileId) < 2n ** 63n).toBe(true);
    expect(file.props.get(`{${OC}}id`)).toBe(`${fileId.padStart(8, '0')}dfs`);
    expect(put.headers['oc-fileid']).toBe(file.props.get(`{${OC}}id`));
    expect(put.headers.etag).toBe(`"${sha1(text)}"`);
    expect(put.headers['oc-etag']).toBe(`"${sha1(text)}"`);
    // Unknown to dfs: not found, as the clients expect; files have no data-fingerprint.
    expect(file.missing).toEqual(
      expect.arrayContaining([`{${OC}}downloadURL`, `{${OC}}dDC`, `{${OC}}data-fingerprint`]),
    );

    expect(folder.props.get('{DAV:}resourcetype')).toBe('{DAV:}collection=');
    expect(folder.props.get(`{${OC}}permissions`)).toBe('RGDNVCK');
    expect(folder.props.get('{DAV:}getetag')).toMatch(/^"[^"]+"$/);
    // Recursive: hello.txt and deep/pic.png.
    expect(folder.props.get(`{${OC}}size`)).toBe(String(text.length + 300));
    expect(deep.props.get(`{${OC}}size`)).toBe('300');
    expect(folder.props.get('{DAV:}quota-used-bytes')).toBe(String(text.length + 300));
    expect(folder.missing).toEqual(expect.arrayContaining(['{DAV:}getcontentlength', `{${OC}}checksums`]));

    const root = await one(`${FILES}/`);
    expect(root.href).toBe(`${FILES}/`);
    expect(root.props.get(`{${OC}}data-fingerprint`)).toBe('');
    expect(root.props.get(`{${OC}}permissions`)).toBe('RGDNVCK');
    expect(root.props.get(`{${OC}}id`)).toMatch(/^\d{8,}dfs$/);
    const { usage } = (await t.app.inject({ url: '/api/auth/me', headers: alice.headers })).json();
    expect(root.props.get('{DAV:}quota-used-bytes')).toBe(String(usage.usedBytes));

    // oc:id and oc:fileid stay with the entry through renames and moves, on every mount.
    const renamed = await dav('MOVE', `${FILES}/props/hello.txt`, {
      destination: `${FILES}/props/deep/renamed.txt`,
    });
    expect(renamed.statusCode).toBe(201);
    expect(renamed.headers['oc-fileid']).toBe(file.props.get(`{${OC}}id`));
    const after = await one('/remote.php/webdav/props/deep/renamed.txt');
    expect(after.props.get(`{${OC}}fileid`)).toBe(fileId);
    const folderMoved = await dav('MOVE', `${FILES}/props/deep/`, { destination: `${FILES}/deep2/` });
    expect(folderMoved.statusCode).toBe(201);
    expect((await one(`${FILES}/deep2/`)).props.get(`{${OC}}id`)).toBe(deep.props.get(`{${OC}}id`));
  });

  it('answers every 207 as application/xml; charset=utf-8, on /dav/ too', async () => {
    for (const url of ['/dav/', '/remote.php/webdav/', `${FILES}/`]) {
      const listing = await dav('PROPFIND', url, { depth: '1' });
      expect(listing.statusCode).toBe(207);
      expect(listing.headers['content-type']).toBe(XML_TYPE);
      const patch = await dav(
        'PROPPATCH',
        `${url}same/`,
        {},
        '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:x"><d:set><d:prop><x:a>1</x:a></d:prop></d:set></d:propertyupdate>',
      );
      expect(patch.statusCode).toBe(207);
      expect(patch.headers['content-type']).toBe(XML_TYPE);
    }
  });

  it('serves OC-Checksum on GET, and identity headers on MKCOL, COPY and MOVE', async () => {
    const data = Buffer.from('checksummed');
    await dav('PUT', `${FILES}/sum.txt`, {}, data);
    const got = await dav('GET', `${FILES}/sum.txt`);
    expect(got.headers['oc-checksum']).toBe(`SHA1:${sha1(data)}`);
    expect(got.headers.etag).toBe(`"${sha1(data)}"`);
    const mkcol = await dav('MKCOL', `${FILES}/ids/`);
    expect(mkcol.statusCode).toBe(201);
    const folder = await one(`${FILES}/ids/`);
    expect(mkcol.headers['oc-fileid']).toBe(folder.props.get(`{${OC}}id`));
    expect(mkcol.headers.etag).toBe(folder.props.get('{DAV:}getetag'));
    expect(mkcol.headers['oc-etag']).toBe(mkcol.headers.etag);
    const copy = await dav('COPY', `${FILES}/sum.txt`, { destination: `${FILES}/ids/copy.txt` });
    expect(copy.statusCode).toBe(201);
    const copied = await one(`${FILES}/ids/copy.txt`);
    expect(copy.headers['oc-fileid']).toBe(copied.props.get(`{${OC}}id`));
    expect(copy.headers.etag).toBe(`"${sha1(data)}"`);
    // A copy is another entry: another id.
    expect(copied.props.get(`{${OC}}id`)).not.toBe((await one(`${FILES}/sum.txt`)).props.get(`{${OC}}id`));
  });

  it('sets a modification time by PROPPATCH of DAV:lastmodified (as rclone does), and refuses a bad one', async () => {
    expect((await dav('PUT', `${FILES}/touched.txt`, {}, 'touch me')).statusCode).toBe(201);
    const update = (value: string) =>
      dav(
        'PROPPATCH',
        `${FILES}/touched.txt`,
        { 'content-type': 'application/xml' },
        `<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><d:lastmodified>${value}</d:lastmodified></d:prop></d:set></d:propertyupdate>`,
      );
    const set = await update('1600000000');
    expect(set.statusCode).toBe(207);
    expect(set.body).toContain('HTTP/1.1 200 OK');
    expect((await one(`${FILES}/touched.txt`)).props.get('{DAV:}getlastmodified')).toBe(
      new Date(1600000000_000).toUTCString(),
    );
    const bad = await update('not a time');
    expect(bad.body).toContain('409 Conflict');
    expect((await one(`${FILES}/touched.txt`)).props.get('{DAV:}getlastmodified')).toBe(
      new Date(1600000000_000).toUTCString(),
    );
    expect((await update('Tue, 15 Nov 1994 08:12:31 GMT')).body).toContain('HTTP/1.1 200 OK');
    expect((await one(`${FILES}/touched.txt`)).props.get('{DAV:}getlastmodified')).toBe(
      'Tue, 15 Nov 1994 08:12:31 GMT',
    );
  });

  it('counts a renamed upload once in its folder size (a taken name is not inserted and rolled forward)', async () => {
    expect((await dav('MKCOL', `${FILES}/twice`)).statusCode).toBe(201);
    const folder = (await t.app.inject({ url: '/api/files?q=twice', headers: alice.headers })).json()
      .items[0];
    for (let i = 0; i < 3; i++) {
      expect((await postForm(t, alice.headers, 'same.txt', Buffer.alloc(1000), folder.id)).statusCode).toBe(
        201,
      );
    }
    const size = await dav(
      'PROPFIND',
      `${FILES}/twice/`,
      { depth: '0' },
      '<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:size/></d:prop></d:propfind>',
    );
    expect(parseMultistatus(size.body)[0]!.props.get(`{${OC}}size`)).toBe('3000');
  });

  it('sets no modification time of a folder by PROPPATCH (a folder has none of its own)', async () => {
    const res = await dav(
      'PROPPATCH',
      `${FILES}/twice/`,
      { 'content-type': 'application/xml' },
      '<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><d:lastmodified>1600000000</d:lastmodified></d:prop></d:set></d:propertyupdate>',
    );
    expect(res.statusCode).toBe(207);
    expect(res.body).toContain('403 Forbidden');
  });

  it('keeps oc:size right through every kind of write', async () => {
    const size = async (p: string) => Number((await one(`${FILES}/${p}`)).props.get(`{${OC}}size`));
    const idOf = async (names: string[]) => {
      let id: string | undefined;
      for (const name of names) {
        const res = await t.app.inject({
          url: `/api/files${id ? `?parentId=${id}` : ''}`,
          headers: alice.headers,
        });
        id = res.json().items.find((e: { name: string }) => e.name === name).id;
      }
      return id!;
    };
    const root0 = await size('');
    const expectSizes = async (sizes: Record<string, number>) => {
      for (const [p, bytes] of Object.entries(sizes)) expect(await size(p), p).toBe(bytes);
      expect(await size('')).toBe(root0 + sizes['sz/']!);
    };
    for (const p of ['sz', 'sz/x', 'sz/x/y']) await dav('MKCOL', `${FILES}/${p}`);
    await dav('PUT', `${FILES}/sz/x/y/f1`, {}, Buffer.alloc(10));
    await expectSizes({ 'sz/': 10, 'sz/x/': 10, 'sz/x/y/': 10 });
    await dav('PUT', `${FILES}/sz/x/y/f1`, {}, Buffer.alloc(25));
    await dav('PUT', `${FILES}/sz/x/f2`, {}, Buffer.alloc(5));
    await expectSizes({ 'sz/': 30, 'sz/x/': 30, 'sz/x/y/': 25 });
    expect((await dav('MOVE', `${FILES}/sz/x/y/`, { destination: `${FILES}/sz/y2/` })).statusCode).toBe(201);
    await expectSizes({ 'sz/': 30, 'sz/x/': 5, 'sz/y2/': 25 });
    const y2 = await idOf(['sz', 'y2']);
    expect((await dav('DELETE', `${FILES}/sz/y2/`)).statusCode).toBe(204);
    await expectSizes({ 'sz/': 5, 'sz/x/': 5 });
    const restored = await t.app.inject({
      method: 'POST',
      url: `/api/trash/${y2}/restore`,
      headers: alice.headers,
    });
    expect(restored.statusCode).toBe(200);
    await expectSizes({ 'sz/': 30, 'sz/y2/': 25 });
    expect((await dav('COPY', `${FILES}/sz/x/`, { destination: `${FILES}/sz/x2/` })).statusCode).toBe(201);
    expect((await postForm(t, alice.headers, 'api.bin', Buffer.alloc(7), y2)).statusCode).toBe(201);
    await expectSizes({ 'sz/': 42, 'sz/x2/': 5, 'sz/y2/': 32, 'sz/x/': 5 });
    // A file trashed on its own, then its folder, then both back: nothing counted twice.
    const f1 = await idOf(['sz', 'y2', 'f1']);
    await t.app.inject({ method: 'DELETE', url: `/api/files/${f1}`, headers: alice.headers });
    await expectSizes({ 'sz/': 17, 'sz/y2/': 7 });
    await dav('DELETE', `${FILES}/sz/y2/`);
    await expectSizes({ 'sz/': 10 });
    await t.app.inject({ method: 'POST', url: `/api/trash/${y2}/restore`, headers: alice.headers });
    await expectSizes({ 'sz/': 17, 'sz/y2/': 7 });
    await t.app.inject({ method: 'POST', url: `/api/trash/${f1}/restore`, headers: alice.headers });
    await expectSizes({ 'sz/': 42, 'sz/y2/': 32 });
  });

  describe('folder ETags', () => {
    /** a/b/c holds the writes; s/t is an unrelated sibling subtree; m is a place to move to. */
    const watched = ['', 'a', 'a/b', 'a/b/c', 's', 's/t', 'm'];
    const etags = async () =>
      new Map(
        await Promise.all(watched.map(async (p) => [p, await etag(`${FILES}/${p}${p ? '/' : ''}`)] as const)),
      );
    let ids: Record<string, string> = {};

    beforeAll(async () => {
      for (const p of ['a', 'a/b', 'a/b/c', 's', 's/t', 'm']) await dav('MKCOL', `${FILES}/${p}`);
      const list = async (parentId?: string) =>
        (
          await t.app.inject({
            url: `/api/files${parentId ? `?parentId=${parentId}` : ''}`,
            headers: alice.headers,
          })
        ).json().items as Array<{ id: string; name: string }>;
      const a = (await list()).find((e) => e.name === 'a')!.id;
      const b = (await list(a)).find((e) => e.name === 'b')!.id;
      const c = (await list(b)).find((e) => e.name === 'c')!.id;
      const m = (await list()).find((e) => e.name === 'm')!.id;
      ids = { a, b, c, m };
    });

    /** Runs `write` and checks which of the watched folders got a new ETag. */
    const expectChanged = async (write: () => Promise<unknown>, changed: string[]) => {
      const before = await etags();
      await write();
      const after = await etags();
      for (const p of watched) {
        if (changed.includes(p)) expect(after.get(p), `${p || '/'} should change`).not.toBe(before.get(p));
        else expect(after.get(p), `${p || '/'} should not change`).toBe(before.get(p));
      }
    };
    const upward = ['', 'a', 'a/b', 'a/b/c'];

    it('changes at every ancestor on WebDAV writes, and nowhere else', async () => {
      await expectChanged(() => dav('PUT', `${FILES}/a/b/c/f.txt`, {}, 'one'), upward);
      await expectChanged(() => dav('PUT', `${FILES}/a/b/c/f.txt`, {}, 'two'), upward);
      await expectChanged(() => dav('MKCOL', `${FILES}/a/b/c/sub`), upward);
      await expectChanged(
        () => dav('MOVE', `${FILES}/a/b/c/f.txt`, { destination: `${FILES}/a/b/c/g.txt` }),
        upward,
      );
      await expectChanged(
        () => dav('COPY', `${FILES}/a/b/c/g.txt`, { destination: `${FILES}/a/b/c/h.txt` }),
        upward,
      );
      // Out of c into m: both sides.
      await expectChanged(
        () => dav('MOVE', `${FILES}/a/b/c/h.txt`, { destination: `${FILES}/m/h.txt` }),
        [...upward, 'm'],
      );
      await expectChanged(
        () => dav('MOVE', `${FILES}/m/h.txt`, { destination: `${FILES}/a/b/c/h.txt` }),
        [...upward, 'm'],
      );
      await expectChanged(() => dav('DELETE', `${FILES}/a/b/c/h.txt`), upward);
    });

    it('changes at every ancestor on API, upload, tus and trash writes', async () => {
      await expectChanged(async () => {
        const res = await postForm(t, alice.headers, 'api.txt', Buffer.from('api'), ids.c);
        expect(res.statusCode).toBe(201);
        ids.api = res.json().file.id;
      }, upward);
      // The chunked upload API (POST /api/uploads, chunks, complete).
      await expectChanged(
        () => uploader(t, alice.headers).upload(Buffer.from('chunked'), 'up.txt', ids.c),
        upward,
      );
      expect((await dav('GET', `${FILES}/a/b/c/up.txt`)).body).toBe('chunked');
      await expectChanged(async () => {
        const res = await t.app.inject({
          method: 'PATCH',
          url: `/api/files/${ids.api}`,
          headers: alice.headers,
          payload: { name: 'api2.txt' },
        });
        expect(res.statusCode).toBe(200);
      }, upward);
      await expectChanged(async () => {
        const res = await t.app.inject({
          method: 'PATCH',
          url: `/api/files/${ids.api}`,
          headers: alice.headers,
          payload: { parentId: ids.m },
        });
        expect(res.statusCode).toBe(200);
      }, [...upward, 'm']);
      await expectChanged(async () => {
        const res = await t.app.inject({
          method: 'POST',
          url: '/api/tus/',
          headers: {
            ...alice.headers,
            'tus-resumable': '1.0.0',
            'upload-length': '3',
            'upload-metadata': `filename ${Buffer.from('tus.txt').toString('base64')},parentId ${Buffer.from(ids.c!).toString('base64')}`,
            'content-type': 'application/offset+octet-stream',
          },
          payload: Buffer.from('tus'),
        });
        expect(res.statusCode, res.body).toBe(201);
      }, upward);
      expect((await dav('GET', `${FILES}/a/b/c/tus.txt`)).body).toBe('tus');
      // Trash, restore and purge of a folder inside c.
      const sub = (await t.app.inject({ url: `/api/files?parentId=${ids.c}`, headers: alice.headers }))
        .json()
        .items.find((e: { name: string }) => e.name === 'sub').id;
      await expectChanged(async () => {
        expect(
          (await t.app.inject({ method: 'DELETE', url: `/api/files/${sub}`, headers: alice.headers }))
            .statusCode,
        ).toBe(204);
      }, upward);
      await expectChanged(async () => {
        const res = await t.app.inject({
          method: 'POST',
          url: `/api/trash/${sub}/restore`,
          headers: alice.headers,
        });
        expect(res.statusCode).toBe(200);
      }, upward);
      await dav('DELETE', `${FILES}/a/b/c/sub`);
      await expectChanged(async () => {
        const res = await t.app.inject({
          method: 'DELETE',
          url: `/api/trash/${sub}`,
          headers: alice.headers,
        });
        expect(res.statusCode).toBe(204);
      }, upward);
    });

    it('gives a file a new ETag with new content only', async () => {
      await dav('PUT', `${FILES}/a/e.txt`, {}, 'first');
      const first = await etag(`${FILES}/a/e.txt`);
      await dav('PUT', `${FILES}/a/e.txt`, {}, 'second');
      const second = await etag(`${FILES}/a/e.txt`);
      expect(second).not.toBe(first);
      expect(second).toBe(`"${sha1('second')}"`);
    });
  });

  describe('conditional writes', () => {
    it('PUT: If-Match and If-None-Match, 412 on a stale tag, nothing written', async () => {
      await dav('PUT', `${FILES}/cond.txt`, {}, 'v1');
      const v1 = `"${sha1('v1')}"`;
      const stale = await dav('PUT', `${FILES}/cond.txt`, { 'if-match': '"0000"' }, 'v2');
      expect(stale.statusCode).toBe(412);
      expect((await dav('GET', `${FILES}/cond.txt`)).body).toBe('v1');
      const fresh = await dav('PUT', `${FILES}/cond.txt`, { 'if-match': v1 }, 'v2');
      expect(fresh.statusCode).toBe(204);
      expect(fresh.headers.etag).toBe(`"${sha1('v2')}"`);
      expect((await dav('PUT', `${FILES}/cond.txt`, { 'if-none-match': '*' }, 'v3')).statusCode).toBe(412);
      expect((await dav('PUT', `${FILES}/cond.txt`, { 'if-match': v1 }, 'v3')).statusCode).toBe(412);
      expect((await dav('GET', `${FILES}/cond.txt`)).body).toBe('v2');
      expect((await dav('PUT', `${FILES}/cond-new.txt`, { 'if-none-match': '*' }, 'n')).statusCode).toBe(201);
      expect((await dav('PUT', `${FILES}/cond-none.txt`, { 'if-match': '*' }, 'n')).statusCode).toBe(412);
      expect((await dav('GET', `${FILES}/cond-none.txt`)).statusCode).toBe(404);
    });

    it('MOVE, COPY and DELETE: 412 on a stale tag, the folder ETag counts for folders', async () => {
      await dav('PUT', `${FILES}/cm.txt`, {}, 'cm');
      const tag = `"${sha1('cm')}"`;
      const to = { destination: `${FILES}/cm2.txt` };
      expect((await dav('MOVE', `${FILES}/cm.txt`, { ...to, 'if-match': '"x"' })).statusCode).toBe(412);
      expect((await dav('COPY', `${FILES}/cm.txt`, { ...to, 'if-match': '"x"' })).statusCode).toBe(412);
      expect((await dav('COPY', `${FILES}/cm.txt`, { ...to, 'if-none-match': tag })).statusCode).toBe(412);
      expect((await dav('DELETE', `${FILES}/cm.txt`, { 'if-match': '"x"' })).statusCode).toBe(412);
      expect((await dav('GET', `${FILES}/cm2.txt`)).statusCode).toBe(404);
      expect((await dav('MOVE', `${FILES}/cm.txt`, { ...to, 'if-match': tag })).statusCode).toBe(201);
      expect((await dav('DELETE', `${FILES}/cm2.txt`, { 'if-match': tag })).statusCode).toBe(204);

      await dav('MKCOL', `${FILES}/cf`);
      const folderTag = await etag(`${FILES}/cf/`);
      await dav('PUT', `${FILES}/cf/x.txt`, {}, 'x');
      expect((await dav('DELETE', `${FILES}/cf/`, { 'if-match': folderTag })).statusCode).toBe(412);
      const now = await etag(`${FILES}/cf/`);
      expect((await dav('DELETE', `${FILES}/cf/`, { 'if-match': now })).statusCode).toBe(204);
    });
  });
});

describe('folder sizes of an existing database', () => {
  it('are summed by the migration: live trees, and what was trashed together', async () => {
    const database = await testDatabaseUrl();
    const db = createDb(database.url);
    try {
      const { userId } = await databaseBefore(db, '019_folder_bytes');
      const row = (id: string, parent: string, kind: string, size: number, trash: string | null = null) => ({
        id,
        user_id: userId,
        parent_id: parent,
        kind,
        name: id,
        live_name: trash ? null : id,
        size,
        status: trash ? 'trashed' : 'active',
        trash_root_id: trash,
        created_at: 1,
        updated_at: 1,
      });
      await db('user_files').insert([
        row('top', '', 'folder', 0),
        row('mid', 'top', 'folder', 0),
        row('f1', 'mid', 'file', 10),
        row('f2', 'top', 'file', 5),
        row('gone', 'top', 'folder', 0, 'gone'),
        row('f3', 'gone', 'file', 7, 'gone'),
        row('f4', 'mid', 'file', 100, 'f4'),
      ]);
      await db.migrate.latest({ migrationSource });
      const sizes = Object.fromEntries(
        (await db('user_files').where('user_id', userId).select('id', 'tree_bytes')).map((r) => [
          r.id,
          Number(r.tree_bytes),
        ]),
      );
      expect(sizes).toMatchObject({ top: 15, mid: 10, gone: 7 });
      expect(Number((await db('users').where('id', userId).first('tree_bytes')).tree_bytes)).toBe(15);
    } finally {
      await db.destroy();
      await database.drop();
    }
  });

  it('are summed anew by 024, past sizes a renamed upload raised twice', async () => {
    const database = await testDatabaseUrl();
    const db = createDb(database.url);
    try {
      const { userId } = await databaseBefore(db, '024_folder_bytes_again');
      const row = (id: string, parent: string, kind: string, size: number, treeBytes: number) => ({
        id,
        user_id: userId,
        parent_id: parent,
        kind,
        name: id,
        live_name: id,
        size,
        status: 'active',
        created_at: 1,
        updated_at: 1,
        tree_bytes: treeBytes,
      });
      await db('user_files').insert([
        row('top', '', 'folder', 0, 3000),
        row('empty', 'top', 'folder', 0, 500),
        row('f', 'top', 'file', 1000, 0),
      ]);
      await db('users').where('id', userId).update({ tree_bytes: 3000 });
      await db.migrate.latest({ migrationSource });
      const sizes = Object.fromEntries(
        (await db('user_files').where('user_id', userId).select('id', 'tree_bytes')).map((r) => [
          r.id,
          Number(r.tree_bytes),
        ]),
      );
      expect(sizes).toMatchObject({ top: 1000, empty: 0 });
      expect(Number((await db('users').where('id', userId).first('tree_bytes')).tree_bytes)).toBe(1000);
    } finally {
      await db.destroy();
      await database.drop();
    }
  });
});
