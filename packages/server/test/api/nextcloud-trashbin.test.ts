import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { type Entry, parseMultistatus } from '../support/multistatus.ts';

const OC = 'http://owncloud.org/ns';
const NC = 'http://nextcloud.org/ns';
const XML_TYPE = 'application/xml; charset=utf-8';

/** What the apps' trash screens ask for, plus one property the trashbin does not have. */
const TRASH_PROPS = `<?xml version="1.0"?>
<d:propfind xmlns:d="DAV:" xmlns:nc="http://nextcloud.org/ns" xmlns:oc="http://owncloud.org/ns">
 <d:prop><nc:trashbin-filename/><nc:trashbin-original-location/><nc:trashbin-deletion-time/>
   <d:getcontentlength/><d:resourcetype/><d:getlastmodified/><oc:size/><oc:fileid/><d:getetag/><nc:has-preview/>
   <oc:share-types/></d:prop></d:propfind>`;

const sha1 = (data: string) => createHash('sha1').update(data).digest('hex');
const filename = (e: Entry) => e.props.get(`{${NC}}trashbin-filename`);

describe('Nextcloud trashbin at /remote.php/dav/trashbin/<user>/', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let bob: Awaited<ReturnType<TestApp['user']>>;
  const basic: Record<string, Record<string, string>> = {};
  const FILES = '/remote.php/dav/files/alice';
  const TRASH = '/remote.php/dav/trashbin/alice/trash';
  const RESTORE = 'http://localhost:80/remote.php/dav/trashbin/alice/restore';
  /** The server's clock, when a test stops it. */
  let frozen: number | null = null;

  beforeAll(async () => {
    t = await startTestApp({}, { now: () => frozen ?? Date.now() });
    alice = await t.user('alice');
    bob = await t.user('bob');
    for (const [name, user] of [
      ['alice', alice],
      ['bob', bob],
    ] as const) {
      const secret = await t.appPassword(user.headers, 'nextcloud');
      basic[name] = { authorization: `Basic ${Buffer.from(`${name}:${secret}`).toString('base64')}` };
    }
  });
  afterAll(() => t.close());

  const dav = (
    method: string,
    url: string,
    headers: Record<string, string> = {},
    payload?: string,
    as = 'alice',
  ) =>
    t.app.inject({
      method: method as 'GET',
      url,
      headers: { ...basic[as], ...headers },
      ...(payload !== undefined ? { payload } : {}),
    });
  const propfind = async (url: string, depth = '1', as = 'alice') => {
    const res = await dav('PROPFIND', url, { depth, 'content-type': 'text/xml' }, TRASH_PROPS, as);
    expect(res.statusCode, res.body).toBe(207);
    expect(res.headers['content-type']).toBe(XML_TYPE);
    return parseMultistatus(res.body);
  };
  /** The trash's items (the trash collection itself left out). */
  const items = async (as = 'alice') =>
    (await propfind(`/remote.php/dav/trashbin/${as}/trash/`, '1', as)).slice(1);
  const fileId = async (url: string) => (await propfind(url, '0'))[0]!.props.get(`{${OC}}fileid`)!;
  const put = async (url: string, body: string) =>
    expect([201, 204]).toContain((await dav('PUT', url, {}, body)).statusCode);
  const mkcol = async (url: string) => expect((await dav('MKCOL', url)).statusCode).toBe(201);
  const trash = async (url: string) => expect((await dav('DELETE', url)).statusCode).toBe(204);
  const restore = (item: Entry, name = filename(item)!, headers: Record<string, string> = {}) =>
    dav('MOVE', item.href, { destination: `${RESTORE}/${encodeURIComponent(name)}`, ...headers });
  const emptyTrash = async () => expect((await dav('DELETE', TRASH)).statusCode).toBe(204);

  it('lists a trashed file and a trashed folder with the properties the apps read', async () => {
    await mkcol(`${FILES}/Docs`);
    await put(`${FILES}/Docs/report.pdf`, 'report');
    await mkcol(`${FILES}/Photos`);
    await mkcol(`${FILES}/Photos/2024`);
    await put(`${FILES}/Photos/a.jpg`, 'aaa');
    await put(`${FILES}/Photos/2024/b%20c.jpg`, 'bbbbb');
    const reportId = await fileId(`${FILES}/Docs/report.pdf`);
    const photosId = await fileId(`${FILES}/Photos/`);
    const bId = await fileId(`${FILES}/Photos/2024/b%20c.jpg`);
    const before = Math.floor(Date.now() / 1000);
    await trash(`${FILES}/Docs/report.pdf`);
    await trash(`${FILES}/Photos`);
    const after = Math.ceil(Date.now() / 1000);

    const listing = await propfind(`${TRASH}/`);
    expect(listing[0]!.href).toBe('/remote.php/dav/trashbin/alice/trash/');
    expect(listing[0]!.props.get('{DAV:}resourcetype')).toBe('{DAV:}collection=');
    const found = listing.slice(1);
    expect(found.map(filename).sort()).toEqual(['Photos', 'report.pdf']);
    const report = found.find((e) => filename(e) === 'report.pdf')!;
    const photos = found.find((e) => filename(e) === 'Photos')!;
    expect(report.href.startsWith('/remote.php/dav/trashbin/alice/trash/report.pdf.d')).toBe(true);
    expect(photos.href.endsWith('/')).toBe(true);

    expect(report.props.get(`{${NC}}trashbin-original-location`)).toBe('Docs/report.pdf');
    expect(photos.props.get(`{${NC}}trashbin-original-location`)).toBe('Photos');
    for (const item of [report, photos]) {
      const deleted = Number(item.props.get(`{${NC}}trashbin-deletion-time`));
      expect(deleted).toBeGreaterThanOrEqual(before);
      expect(deleted).toBeLessThanOrEqual(after);
      expect(Date.parse(item.props.get('{DAV:}getlastmodified')!)).not.toBeNaN();
    }
    expect(report.missing).toEqual([`{${OC}}share-types`]);
    expect(report.props.get(`{${OC}}fileid`)).toBe(reportId);
    expect(photos.props.get(`{${OC}}fileid`)).toBe(photosId);
    expect(report.props.get('{DAV:}getcontentlength')).toBe('6');
    expect(report.props.get(`{${OC}}size`)).toBe('6');
    expect(report.props.get('{DAV:}resourcetype')).toBe('');
    expect(report.props.get('{DAV:}getetag')).toBe(`"${sha1('report')}"`);
    expect(report.props.get(`{${NC}}has-preview`)).toBe('false');
    expect(photos.props.get('{DAV:}resourcetype')).toBe('{DAV:}collection=');
    expect(photos.props.get(`{${OC}}size`)).toBe('8');
    expect(photos.missing).toEqual(['{DAV:}getcontentlength', `{${OC}}share-types`]);

    // Depth 0: the trash alone; an item by its href: that item alone.
    expect(await propfind(`${TRASH}/`, '0')).toHaveLength(1);
    const alone = await propfind(report.href, '0');
    expect(alone.map((e) => e.href)).toEqual([report.href]);
    expect(alone[0]!.props).toEqual(report.props);

    // A trashed folder lists what went to the trash with it, one level at a time.
    const inside = await propfind(photos.href);
    expect(inside.map((e) => e.href)).toEqual([photos.href, `${photos.href}2024/`, `${photos.href}a.jpg`]);
    expect(inside[2]!.props.get(`{${NC}}trashbin-original-location`)).toBe('Photos/a.jpg');
    const deeper = await propfind(`${photos.href}2024/`);
    expect(deeper.map((e) => e.href)).toEqual([`${photos.href}2024/`, `${photos.href}2024/b%20c.jpg`]);
    expect(deeper[1]!.props.get(`{${NC}}trashbin-filename`)).toBe('b c.jpg');
    expect(deeper[1]!.props.get(`{${NC}}trashbin-original-location`)).toBe('Photos/2024/b c.jpg');
    expect(deeper[1]!.props.get(`{${OC}}fileid`)).toBe(bId);
    expect((await dav('PROPFIND', `${photos.href}nope`, { depth: '0' })).statusCode).toBe(404);
    await emptyTrash();
  });

  it('restores an item with a MOVE to restore/: back at its path, with the same oc:fileid', async () => {
    await mkcol(`${FILES}/R`);
    await mkcol(`${FILES}/R/sub`);
    await put(`${FILES}/R/sub/x.txt`, 'x');
    await put(`${FILES}/R/y.txt`, 'yy');
    const yId = await fileId(`${FILES}/R/y.txt`);
    const folderId = await fileId(`${FILES}/R/sub/`);
    await trash(`${FILES}/R/y.txt`);
    await trash(`${FILES}/R/sub`);
    const found = await items();
    const [sub, y] = ['sub', 'y.txt'].map((n) => found.find((e) => filename(e) === n));

    const restored = await restore(y!);
    expect(restored.statusCode, restored.body).toBe(201);
    expect(restored.headers['oc-fileid']).toBe(`${yId.padStart(8, '0')}dfs`);
    expect(restored.headers.etag).toBe(`"${sha1('yy')}"`);
    expect((await dav('GET', `${FILES}/R/y.txt`)).body).toBe('yy');
    expect(await fileId(`${FILES}/R/y.txt`)).toBe(yId);
    // The name under restore/ is the client's to choose; the folder comes back with its content.
    expect((await restore(sub!, 'whatever')).statusCode).toBe(201);
    expect(await fileId(`${FILES}/R/sub/`)).toBe(folderId);
    expect((await dav('GET', `${FILES}/R/sub/x.txt`)).body).toBe('x');
    expect(await items()).toEqual([]);
    // Already restored: nothing is there any more.
    const again = await restore(y!);
    expect(again.statusCode).toBe(404);
    expect(errorCode(again)).toBe('not_found');
  });

  it("restores onto a taken name as dfs's trash does: to the root, then with a suffix", async () => {
    await mkcol(`${FILES}/T`);
    await put(`${FILES}/T/n.txt`, 'first');
    const firstId = await fileId(`${FILES}/T/n.txt`);
    await trash(`${FILES}/T/n.txt`);
    await put(`${FILES}/T/n.txt`, 'second');
    await put(`${FILES}/n.txt`, 'at the root');
    const [item] = await items();
    expect(item!.props.get(`{${NC}}trashbin-original-location`)).toBe('T/n.txt');
    expect((await restore(item!)).statusCode).toBe(201);
    // Nothing is overwritten: the name is taken in T/ and at the root, so it comes back as "n (1).txt".
    expect((await dav('GET', `${FILES}/T/n.txt`)).body).toBe('second');
    expect((await dav('GET', `${FILES}/n.txt`)).body).toBe('at the root');
    expect((await dav('GET', `${FILES}/n%20(1).txt`)).body).toBe('first');
    expect(await fileId(`${FILES}/n%20(1).txt`)).toBe(firstId);
  });

  it('keeps the original location of an item whose folder went to the trash after it', async () => {
    await mkcol(`${FILES}/Gone`);
    await put(`${FILES}/Gone/k.txt`, 'k');
    await trash(`${FILES}/Gone/k.txt`);
    await trash(`${FILES}/Gone`);
    const found = await items();
    const k = found.find((e) => filename(e) === 'k.txt')!;
    expect(k.props.get(`{${NC}}trashbin-original-location`)).toBe('Gone/k.txt');
    // The folder trashed later does not list it: it is an item of its own.
    const gone = found.find((e) => filename(e) === 'Gone')!;
    expect((await propfind(gone.href)).map((e) => e.href)).toEqual([gone.href]);
    // Its folder is not live: dfs puts it back at the root.
    expect((await restore(k)).statusCode).toBe(201);
    expect((await dav('GET', `${FILES}/k.txt`)).body).toBe('k');
    // Once the folder is deleted for good, the item's place is unknown: the root.
    await trash(`${FILES}/k.txt`);
    expect((await dav('DELETE', gone.href)).statusCode).toBe(204);
    const [again] = await items();
    expect(again!.props.get(`{${NC}}trashbin-original-location`)).toBe('k.txt');
    await emptyTrash();
  });

  it('names two items of one name trashed in the same second apart', async () => {
    const at = Date.now();
    frozen = at;
    try {
      await put(`${FILES}/dup.txt`, 'one');
      await trash(`${FILES}/dup.txt`);
      await put(`${FILES}/dup.txt`, 'two');
      await trash(`${FILES}/dup.txt`);
    } finally {
      frozen = null;
    }
    const found = await items();
    expect(found.map(filename)).toEqual(['dup.txt', 'dup.txt']);
    const second = String(Math.floor(at / 1000));
    expect(found.map((e) => e.props.get(`{${NC}}trashbin-deletion-time`))).toEqual([second, second]);
    expect(new Set(found.map((e) => e.href)).size).toBe(2);
    expect(new Set(found.map((e) => e.props.get('{DAV:}getetag'))).size).toBe(2);
    // A segment that only looks like one (the same id under another name) names nothing.
    const forged = found[0]!.href.replace('/dup.txt.d', '/other.txt.d');
    expect((await dav('PROPFIND', forged, { depth: '0' })).statusCode).toBe(404);
    await emptyTrash();
  });

  it('purges one item with DELETE, and only a whole item', async () => {
    await mkcol(`${FILES}/P`);
    await put(`${FILES}/P/in.txt`, 'in');
    await put(`${FILES}/keep.txt`, 'keep');
    await trash(`${FILES}/P`);
    await trash(`${FILES}/keep.txt`);
    const found = await items();
    const folder = found.find((e) => filename(e) === 'P')!;
    const inner = await dav('DELETE', `${folder.href}in.txt`);
    expect(inner.statusCode).toBe(403);
    expect(errorCode(inner)).toBe('forbidden');
    expect((await dav('DELETE', folder.href)).statusCode).toBe(204);
    expect((await items()).map(filename)).toEqual(['keep.txt']);
    const api = await t.app.inject({ method: 'GET', url: '/api/trash', headers: alice.headers });
    expect((api.json() as { items: Array<{ name: string }> }).items.map((i) => i.name)).toEqual(['keep.txt']);
    expect((await dav('DELETE', folder.href)).statusCode).toBe(404);
    await emptyTrash();
  });

  it('empties the trash with DELETE on trash, with or without the slash', async () => {
    for (const url of [TRASH, `${TRASH}/`]) {
      await put(`${FILES}/e1.txt`, 'e1');
      await mkcol(`${FILES}/E`);
      await put(`${FILES}/E/e2.txt`, 'e2');
      await trash(`${FILES}/e1.txt`);
      await trash(`${FILES}/E`);
      expect(await items()).toHaveLength(2);
      expect((await dav('DELETE', url)).statusCode).toBe(204);
      expect(await items()).toEqual([]);
      const api = await t.app.inject({ method: 'GET', url: '/api/trash', headers: alice.headers });
      expect((api.json() as { total: number }).total).toBe(0);
    }
  });

  it("answers 404 for another user's trashbin, and leaves that trash alone", async () => {
    await t.app.inject({
      method: 'PUT',
      url: '/remote.php/dav/files/bob/b.txt',
      headers: basic.bob!,
      payload: 'bob',
    });
    await dav('DELETE', '/remote.php/dav/files/bob/b.txt', {}, undefined, 'bob');
    const [bobs] = await items('bob');
    expect(filename(bobs!)).toBe('b.txt');
    const segment = bobs!.href.split('/').at(-1)!;
    for (const [method, url, headers] of [
      ['PROPFIND', '/remote.php/dav/trashbin/bob/trash/', { depth: '1' }],
      ['PROPFIND', '/remote.php/dav/trashbin/bob/', { depth: '0' }],
      ['DELETE', '/remote.php/dav/trashbin/bob/trash', {}],
      ['DELETE', `/remote.php/dav/trashbin/bob/trash/${segment}`, {}],
      [
        'MOVE',
        `/remote.php/dav/trashbin/bob/trash/${segment}`,
        { destination: `/remote.php/dav/trashbin/bob/restore/b.txt` },
      ],
    ] as const) {
      const res = await dav(method, url, headers);
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(errorCode(res)).toBe('not_found');
    }
    // Bob's item under alice's name is not alice's either.
    expect((await dav('PROPFIND', `${TRASH}/${segment}`, { depth: '0' })).statusCode).toBe(404);
    expect((await dav('DELETE', `${TRASH}/${segment}`)).statusCode).toBe(404);
    expect((await items('bob')).map((e) => e.href)).toEqual([bobs!.href]);
  });

  it('refuses a MOVE without a proper Destination with a JSON error, restoring nothing', async () => {
    await put(`${FILES}/d.txt`, 'd');
    await trash(`${FILES}/d.txt`);
    const [item] = await items();
    const cases: Array<[Record<string, string>, number, string]> = [
      [{}, 400, 'bad_request'],
      [{ destination: 'http://[broken' }, 400, 'bad_request'],
      [{ destination: `${FILES}/d.txt` }, 403, 'forbidden'],
      [{ destination: '/remote.php/dav/trashbin/alice/restore' }, 403, 'forbidden'],
      [{ destination: '/remote.php/dav/trashbin/alice/restore/a/b' }, 403, 'forbidden'],
      [{ destination: '/remote.php/dav/trashbin/alice/trash/d.txt' }, 403, 'forbidden'],
      [{ destination: '/remote.php/dav/trashbin/bob/restore/d.txt' }, 403, 'forbidden'],
      [
        { destination: 'http://elsewhere.example/remote.php/dav/trashbin/alice/restore/d.txt' },
        502,
        'bad_gateway',
      ],
    ];
    for (const [headers, status, code] of cases) {
      const res = await dav('MOVE', item!.href, headers);
      expect(res.statusCode, JSON.stringify(headers)).toBe(status);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(errorCode(res)).toBe(code);
    }
    // A part of a trashed folder, or the trash itself, cannot be restored.
    const whole = await dav('MOVE', `${TRASH}/`, { destination: `${RESTORE}/x` });
    expect(whole.statusCode).toBe(403);
    expect((await items()).map((e) => e.href)).toEqual([item!.href]);
    expect((await dav('GET', `${FILES}/d.txt`)).statusCode).toBe(404);
    // A path-only Destination names this server.
    expect(
      (await dav('MOVE', item!.href, { destination: '/remote.php/dav/trashbin/alice/restore/d.txt' }))
        .statusCode,
    ).toBe(201);
    expect((await dav('GET', `${FILES}/d.txt`)).body).toBe('d');
  });

  it('takes app passwords only, challenges for Basic, and lists the trashbin home', async () => {
    const none = await t.app.inject({ method: 'PROPFIND', url: `${TRASH}/`, headers: { depth: '1' } });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Basic /);
    const account = await t.app.inject({
      method: 'PROPFIND',
      url: `${TRASH}/`,
      headers: {
        depth: '1',
        authorization: `Basic ${Buffer.from('alice:correct horse battery').toString('base64')}`,
      },
    });
    expect(account.statusCode).toBe(401);
    const home = await propfind('/remote.php/dav/trashbin/alice/');
    expect(home.map((e) => e.href)).toEqual([
      '/remote.php/dav/trashbin/alice/',
      '/remote.php/dav/trashbin/alice/trash/',
      '/remote.php/dav/trashbin/alice/restore/',
    ]);
    expect((await propfind('/remote.php/dav/trashbin/alice/restore/')).map((e) => e.href)).toEqual([
      '/remote.php/dav/trashbin/alice/restore/',
    ]);
    // A body without a Content-Type is read too (some clients send none).
    const bare = await dav('PROPFIND', `${TRASH}/`, { depth: '0' }, TRASH_PROPS);
    expect(bare.statusCode).toBe(207);
    expect(parseMultistatus(bare.body)[0]!.missing).toContain(`{${OC}}share-types`);
    const infinite = await dav('PROPFIND', `${TRASH}/`, { depth: 'infinity' });
    expect(infinite.statusCode).toBe(403);
    const put = await dav('PUT', `${TRASH}/x.txt`, {}, 'x');
    expect(put.statusCode).toBe(405);
    expect(errorCode(put)).toBe('method_not_allowed');
    const elsewhere = await dav('PROPFIND', '/remote.php/dav/trashbin/alice/other/', { depth: '0' });
    expect(elsewhere.statusCode).toBe(404);
    expect(errorCode(elsewhere)).toBe('not_found');
    const options = await t.app.inject({ method: 'OPTIONS', url: `${TRASH}/` });
    expect(options.headers.allow).toContain('PROPFIND');
  });

  it('tells the apps that deleted files can be restored (files.undelete)', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/ocs/v2.php/cloud/capabilities?format=json',
      headers: basic.alice!,
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().ocs.data.capabilities.files.undelete).toBe(true);
  });
});
