import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { parseMultistatus } from '../support/multistatus.ts';
import { uploader } from '../support/uploads.ts';

describe('WebDAV at /dav/', () => {
  let t: TestApp;
  let basic: Record<string, string>;
  const doc = random(5000);
  const unicode = random(1234);

  beforeAll(async () => {
    t = await startTestApp();
    const alice = await t.user('alice');
    const secret = await t.appPassword(alice.headers, 'dav');
    basic = { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}` };
    const folder = (
      await t.app.inject({
        method: 'POST',
        url: '/api/folders',
        headers: alice.headers,
        payload: { name: 'Docs' },
      })
    ).json().file;
    await uploader(t, alice.headers).upload(doc, 'report.txt');
    await uploader(t, alice.headers).upload(unicode, '报告 #1.bin', folder.id);
  });
  afterAll(() => t.close());

  const propfind = (url: string, depth: string, body?: string, headers = basic) =>
    t.app.inject({
      method: 'PROPFIND' as 'GET',
      url,
      headers: { ...headers, depth, ...(body ? { 'content-type': 'application/xml' } : {}) },
      ...(body ? { payload: body } : {}),
    });

  it('says what it speaks without credentials, and challenges for Basic with an app password', async () => {
    const options = await t.app.inject({ method: 'OPTIONS', url: '/dav/' });
    expect(options.statusCode).toBe(200);
    expect(options.headers.dav).toContain('1');
    expect(options.headers.allow).toContain('PROPFIND');
    const anonymous = await propfind('/dav/', '0', undefined, {});
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toContain('Basic');
    const accountPassword = {
      authorization: `Basic ${Buffer.from('alice:correct horse battery').toString('base64')}`,
    };
    expect((await propfind('/dav/', '0', undefined, accountPassword)).statusCode).toBe(401);
  });

  it('lists a folder with depth 1: sizes, types, ETags as the content SHA-1, quota at the root', async () => {
    const res = await propfind('/dav/', '1');
    expect(res.statusCode).toBe(207);
    const entries = parseMultistatus(res.body);
    expect(entries.map((e) => e.href).sort()).toEqual(['/dav/', '/dav/Docs/', '/dav/report.txt']);
    const root = entries.find((e) => e.href === '/dav/')!;
    expect(root.props.get('{DAV:}resourcetype')).toBe('{DAV:}collection=');
    expect(Number(root.props.get('{DAV:}quota-used-bytes'))).toBe(doc.length + unicode.length);
    const file = entries.find((e) => e.href === '/dav/report.txt')!;
    expect(file.props.get('{DAV:}getcontentlength')).toBe(String(doc.length));
    expect(file.props.get('{DAV:}getetag')).toBe(`"${createHash('sha1').update(doc).digest('hex')}"`);
    expect(Date.parse(file.props.get('{DAV:}getlastmodified')!)).toBeGreaterThan(0);
    expect(entries.find((e) => e.href === '/dav/Docs/')!.props.get('{DAV:}resourcetype')).toBe(
      '{DAV:}collection=',
    );

    const inner = parseMultistatus((await propfind('/dav/Docs/', '1')).body);
    expect(inner.map((e) => e.href)).toContain(`/dav/Docs/${encodeURIComponent('报告 #1.bin')}`);
  });

  it('answers the properties asked for, 404 for unknown ones; refuses infinite depth and bad XML', async () => {
    const body =
      '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:x-test"><D:prop><D:getcontentlength/><Z:color/></D:prop></D:propfind>';
    const [entry] = parseMultistatus((await propfind('/dav/report.txt', '0', body)).body);
    expect([...entry!.props.keys()]).toEqual(['{DAV:}getcontentlength']);
    expect(entry!.missing).toEqual(['{urn:x-test}color']);
    const infinite = await propfind('/dav/', 'infinity');
    expect(infinite.statusCode).toBe(403);
    expect(infinite.body).toContain('propfind-finite-depth');
    expect((await propfind('/dav/', '0', '<D:propfind xmlns:D="DAV:"><D:prop>')).statusCode).toBe(400);
    expect((await propfind('/dav/nothing-here', '0')).statusCode).toBe(404);
  });

  it('serves a file with Range and the same headers as a download; a collection has no GET', async () => {
    const url = `/dav/Docs/${encodeURIComponent('报告 #1.bin')}`;
    const whole = await t.app.inject({ url, headers: basic });
    expect(whole.statusCode).toBe(200);
    expect(whole.rawPayload.equals(unicode)).toBe(true);
    const part = await t.app.inject({ url, headers: { ...basic, range: 'bytes=10-19' } });
    expect(part.statusCode).toBe(206);
    expect(part.rawPayload.equals(unicode.subarray(10, 20))).toBe(true);
    expect((await t.app.inject({ url: '/dav/Docs/', headers: basic })).statusCode).toBe(405);
    expect((await t.app.inject({ url: '/dav/nope.txt', headers: basic })).statusCode).toBe(404);
  });

  it('PUTs new files and new bytes in place, and copies without copying bytes', async () => {
    const first = random(70_000);
    const put = (url: string, body: Buffer) =>
      t.app.inject({
        method: 'PUT',
        url,
        headers: { ...basic, 'content-type': 'application/octet-stream' },
        payload: body,
      });
    expect((await put('/dav/Docs/new.bin', first)).statusCode).toBe(201);
    const got = await t.app.inject({ url: '/dav/Docs/new.bin', headers: basic });
    expect(got.rawPayload.equals(first)).toBe(true);
    const [before] = parseMultistatus((await propfind('/dav/Docs/new.bin', '0')).body);
    const second = random(1000);
    expect((await put('/dav/Docs/new.bin', second)).statusCode).toBe(204);
    const [after] = parseMultistatus((await propfind('/dav/Docs/new.bin', '0')).body);
    expect(after!.props.get('{DAV:}getcontentlength')).toBe('1000');
    expect(after!.props.get('{DAV:}getetag')).not.toBe(before!.props.get('{DAV:}getetag'));
    expect((await t.app.inject({ url: '/dav/Docs/new.bin', headers: basic })).rawPayload.equals(second)).toBe(
      true,
    );
    expect((await put('/dav/Missing/x.bin', second)).statusCode).toBe(409);

    const contents = async () => Number((await t.app.services.db('contents').count({ n: '*' }).first())?.n);
    const before2 = await contents();
    const copy = await t.app.inject({
      method: 'COPY' as 'GET',
      url: '/dav/Docs/',
      headers: { ...basic, destination: 'http://localhost/dav/Docs%20copy/' },
    });
    expect(copy.statusCode).toBe(201);
    const copied = parseMultistatus((await propfind('/dav/Docs%20copy/', '1')).body).map((e) => e.href);
    expect(copied).toContain(`/dav/Docs%20copy/${encodeURIComponent('报告 #1.bin')}`);
    // A copy is a new name over the same content rows.
    expect(await contents()).toBe(before2);

    const moved = await t.app.inject({
      method: 'MOVE' as 'GET',
      url: '/dav/Docs%20copy/new.bin',
      headers: { ...basic, destination: '/dav/moved.bin', overwrite: 'F' },
    });
    expect(moved.statusCode).toBe(201);
    const again = await t.app.inject({
      method: 'MOVE' as 'GET',
      url: '/dav/report.txt',
      headers: { ...basic, destination: '/dav/moved.bin', overwrite: 'F' },
    });
    expect(again.statusCode).toBe(412);
    expect(
      (await t.app.inject({ method: 'MKCOL' as 'GET', url: '/dav/Fresh', headers: basic })).statusCode,
    ).toBe(201);
    expect(
      (await t.app.inject({ method: 'MKCOL' as 'GET', url: '/dav/Fresh', headers: basic })).statusCode,
    ).toBe(405);
    // DELETE goes to the trash, as everywhere in dfs.
    expect((await t.app.inject({ method: 'DELETE', url: '/dav/moved.bin', headers: basic })).statusCode).toBe(
      204,
    );
    const trash = await t.app.inject({
      url: '/api/trash',
      headers: { authorization: basic.authorization!.replace(/^Basic .*/, '') },
    });
    expect(trash.statusCode).toBe(401);
  });

  it('stores the same bytes once, whether they came over WebDAV, tus or the JSON API', async () => {
    const data = random(150_000);
    const sha1 = createHash('sha1').update(data).digest('hex');
    const bob = await t.user('bob');
    await uploader(t, bob.headers).upload(data, 'via-api.bin');
    const tus = await t.app.inject({
      method: 'POST',
      url: '/api/tus/',
      headers: {
        ...bob.headers,
        'tus-resumable': '1.0.0',
        'upload-length': String(data.length),
        'upload-metadata': `filename ${Buffer.from('via-tus.bin').toString('base64')}`,
        'content-type': 'application/offset+octet-stream',
      },
      payload: data,
    });
    expect(tus.statusCode).toBe(201);
    const put = await t.app.inject({ method: 'PUT', url: '/dav/via-dav.bin', headers: basic, payload: data });
    expect(put.statusCode).toBe(201);
    expect(await t.app.services.db('contents').where({ sha1 })).toHaveLength(1);
    expect(await t.app.services.db('user_files').where({ size: data.length })).toHaveLength(3);
  });
  it('stores a PUT whatever type it says it is, as rclone sends them (JSON and text are bytes too)', async () => {
    for (const [name, type, body] of [
      ['settings.json', 'application/json', '{"theme":"dark"}'],
      ['notes.txt', 'text/plain; charset=utf-8', 'plain words'],
      ['form.bin', 'application/x-www-form-urlencoded', 'a=1&b=2'],
    ] as const) {
      const put = await t.app.inject({
        method: 'PUT',
        url: `/dav/${name}`,
        headers: { ...basic, 'content-type': type },
        payload: body,
      });
      expect(put.statusCode, `${name}: ${put.body}`).toBe(201);
      expect((await t.app.inject({ url: `/dav/${name}`, headers: basic })).body).toBe(body);
    }
  });
});
