import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppInstance, buildApp } from '../../src/app.ts';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random, sha1 } from '../support/bytes.ts';
import { CHUNK } from '../support/uploads.ts';

const XML_TYPE = 'application/xml; charset=utf-8';
const UPLOADS = '/remote.php/dav/uploads/alice';
const FILES = '/remote.php/dav/files/alice';

/** `%016d` (3.x desktop clients), `%05d` (current clients, 1-based) and rclone's `%015d-%015d`. */
const name16 = (i: number) => String(i).padStart(16, '0');
const name5 = (i: number) => String(i).padStart(5, '0');
const rangeName = (start: number, end: number) =>
  `${String(start).padStart(15, '0')}-${String(end).padStart(15, '0')}`;

/** Cuts `data` into pieces of the given sizes (the last takes the rest): chunk sizes grow as clients tune them. */
function cut(data: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const size of sizes) {
    out.push(data.subarray(at, at + size));
    at += size;
  }
  if (at < data.length) out.push(data.subarray(at));
  return out;
}

describe("Nextcloud's chunked upload v2 at /remote.php/dav/uploads/<user>/", () => {
  let t: TestApp;
  let app: AppInstance;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let basic: Record<string, string>;
  let bobBasic: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) });
    app = t.app;
    alice = await t.user('alice');
    const bob = await t.user('bob');
    const secret = await t.appPassword(alice.headers, 'Nextcloud Desktop');
    basic = { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}` };
    const bobSecret = await t.appPassword(bob.headers);
    bobBasic = { authorization: `Basic ${Buffer.from(`bob:${bobSecret}`).toString('base64')}` };
  });
  afterAll(async () => {
    await app.close();
    await t.close();
  });

  const dav = (
    method: string,
    url: string,
    headers: Record<string, string> = {},
    payload?: string | Buffer,
  ) =>
    app.inject({
      method: method as 'GET',
      url,
      headers: { ...basic, ...headers },
      ...(payload !== undefined ? { payload } : {}),
    });
  const fileByName = async (name: string) =>
    (await app.inject({ url: `/api/files?q=${encodeURIComponent(name)}`, headers: alice.headers })).json()
      .items[0] as { id: string; size: number; sha1: string; mtime: string } | undefined;
  const ocIdOf = async (url: string) => {
    const res = await dav(
      'PROPFIND',
      url,
      { depth: '0' },
      '<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:id/><d:getetag/></d:prop></d:propfind>',
    );
    return {
      id: /<oc:id[^>]*>([^<]+)</.exec(res.body)?.[1],
      etag: /<D:getetag>([^<]+)</.exec(res.body)?.[1]?.replace(/&quot;/g, '"'),
    };
  };
  const rootEtag = async () => (await ocIdOf(`${FILES}/`)).etag;

  it("takes a 3.x desktop client's upload: 16-digit chunks of growing size, the target named only by the MOVE", async () => {
    const data = random(3 * CHUNK + 777);
    const before = await rootEtag();
    expect(
      (await dav('MKCOL', `${UPLOADS}/2189215317`, { 'oc-total-length': String(data.length) })).statusCode,
    ).toBe(201);
    // Chunk boundaries that are not the server's: 10 MB then 15 MB in the real client.
    const pieces = cut(data, [CHUNK + 100, 2 * CHUNK + 5]);
    let offset = 0;
    for (const [i, piece] of pieces.entries()) {
      const res = await dav(
        'PUT',
        `${UPLOADS}/2189215317/${name16(i)}`,
        { 'oc-chunk-offset': String(offset), 'content-type': 'application/octet-stream' },
        piece,
      );
      expect(res.statusCode, res.body).toBe(201);
      offset += piece.length;
    }
    const move = await dav('MOVE', `${UPLOADS}/2189215317/.file`, {
      destination: `${FILES}/big.bin`,
      'oc-total-length': String(data.length),
      'oc-checksum': `SHA1:${sha1(data)}`,
      'x-oc-mtime': '1796603764',
    });
    expect(move.statusCode, move.body).toBe(201);
    expect(move.headers.etag).toBe(`"${sha1(data)}"`);
    expect(move.headers['oc-etag']).toBe(move.headers.etag);
    expect(move.headers['x-oc-mtime']).toBe('accepted');
    const listed = await ocIdOf(`${FILES}/big.bin`);
    expect(move.headers['oc-fileid']).toBe(listed.id);
    const get = await dav('GET', `${FILES}/big.bin`);
    expect(get.rawPayload.equals(data)).toBe(true);
    expect(get.headers['oc-checksum']).toBe(`SHA1:${sha1(data)}`);
    const file = await fileByName('big.bin');
    expect(file).toMatchObject({
      size: data.length,
      sha1: sha1(data),
      mtime: new Date(1796603764_000).toISOString(),
    });
    // The root's ETag tells a syncing client something below changed.
    expect(await rootEtag()).not.toBe(before);
    // The upload folder is done with; a MOVE sent again (its answer lost) answers the same file.
    const again = await dav('MOVE', `${UPLOADS}/2189215317/.file`, { destination: `${FILES}/big.bin` });
    expect([201, 204]).toContain(again.statusCode);
    expect(again.headers['oc-fileid']).toBe(listed.id);
  });

  it("takes a current client's replacement: 5-digit chunks from 1, Destination URLs, If: with the old ETag; the file keeps its id", async () => {
    const old = random(CHUNK + 3);
    expect((await dav('PUT', `${FILES}/report 2024.pdf`, {}, old)).statusCode).toBe(201);
    const { id, etag } = await ocIdOf(`${FILES}/report%202024.pdf`);
    const data = random(2 * CHUNK + 11);
    const url = `http://localhost:80${FILES}/report%202024.pdf`;
    const common = { destination: url, 'oc-total-length': String(data.length) };
    expect((await dav('MKCOL', `${UPLOADS}/7781`, common)).statusCode).toBe(201);
    const pieces = cut(data, [CHUNK, CHUNK]);
    let offset = 0;
    for (const [i, piece] of pieces.entries()) {
      const res = await dav(
        'PUT',
        `${UPLOADS}/7781/${name5(i + 1)}`,
        { ...common, 'oc-chunk-offset': String(offset) },
        piece,
      );
      expect(res.statusCode, res.body).toBe(201);
      offset += piece.length;
    }
    const finish = (ifEtag: string) =>
      dav('MOVE', `${UPLOADS}/7781/.file`, {
        destination: `${FILES}/report 2024.pdf`,
        'oc-total-length': String(data.length),
        'oc-checksum': `SHA1:${sha1(data)}`,
        'x-oc-mtime': '1700000000',
        if: `<${url}> ([${ifEtag}])`,
      });
    // A stale ETag: 412, nothing changed, and the upload is still there to finish.
    const stale = await finish('"0000000000000000000000000000000000000000"');
    expect(stale.statusCode, stale.body).toBe(412);
    expect(errorCode(stale)).toBe('precondition_failed');
    expect((await dav('GET', `${FILES}/report%202024.pdf`)).rawPayload.equals(old)).toBe(true);
    const move = await finish(etag!);
    expect(move.statusCode, move.body).toBe(204);
    expect(move.headers['oc-fileid']).toBe(id);
    expect((await dav('GET', `${FILES}/report%202024.pdf`)).rawPayload.equals(data)).toBe(true);
    expect((await ocIdOf(`${FILES}/report%202024.pdf`)).id).toBe(id);
    // The replaced content is kept as a version of the file.
    const file = await fileByName('report 2024.pdf');
    const versions = (
      await app.inject({ url: `/api/files/${file!.id}/versions`, headers: alice.headers })
    ).json();
    expect(versions.items.map((v: { sha1: string }) => v.sha1)).toEqual([sha1(data), sha1(old)]);
  });

  it("takes rclone's uploads: no OC-Chunk-Offset, form-urlencoded chunks, a trailing slash; byte-range names too", async () => {
    const data = random(2 * CHUNK + 500);
    const dir = 'rclone-chunked-upload-0123456789abcdef0123456789abcdef';
    const url = `http://localhost:80${FILES}/r.bin`;
    expect((await dav('DELETE', `${UPLOADS}/${dir}/`)).statusCode).toBe(404);
    expect((await dav('MKCOL', `${UPLOADS}/${dir}/`, { destination: url })).statusCode).toBe(201);
    for (const [i, piece] of cut(data, [CHUNK, CHUNK]).entries()) {
      const res = await dav(
        'PUT',
        `${UPLOADS}/${dir}/${name5(i + 1)}`,
        {
          destination: url,
          'oc-total-length': String(data.length),
          'content-type': 'application/x-www-form-urlencoded',
        },
        piece,
      );
      expect(res.statusCode, res.body).toBe(201);
    }
    const move = await dav('MOVE', `${UPLOADS}/${dir}/.file`, {
      destination: url,
      'oc-total-length': String(data.length),
      'x-oc-mtime': '1577934245',
      'oc-checksum': `SHA1:${sha1(data)}`,
    });
    expect(move.statusCode, move.body).toBe(201);
    expect((await fileByName('r.bin'))?.sha1).toBe(sha1(data));

    // rclone 1.63's names are byte ranges, with the total length on MKCOL.
    const other = random(CHUNK + 9);
    expect(
      (await dav('MKCOL', `${UPLOADS}/ranges`, { 'oc-total-length': String(other.length) })).statusCode,
    ).toBe(201);
    for (const [start, end] of [
      [0, 999],
      [1000, other.length - 1],
    ] as const) {
      const res = await dav(
        'PUT',
        `${UPLOADS}/ranges/${rangeName(start, end)}`,
        {},
        other.subarray(start, end + 1),
      );
      expect(res.statusCode, res.body).toBe(201);
    }
    const done = await dav('MOVE', `${UPLOADS}/ranges/.file`, { destination: `${FILES}/ranges.bin` });
    expect(done.statusCode, done.body).toBe(201);
    expect((await fileByName('ranges.bin'))?.sha1).toBe(sha1(other));
  });

  it('lists the chunks it holds so a client resumes, across a restart of the app, and takes a chunk sent again', async () => {
    const data = random(3 * CHUNK + 4321);
    const pieces = cut(data, [CHUNK + 10, CHUNK + 20]);
    expect(
      (await dav('MKCOL', `${UPLOADS}/resume1`, { 'oc-total-length': String(data.length) })).statusCode,
    ).toBe(201);
    const put = (i: number, offset: number) =>
      dav('PUT', `${UPLOADS}/resume1/${name16(i)}`, { 'oc-chunk-offset': String(offset) }, pieces[i]);
    expect((await put(0, 0)).statusCode).toBe(201);
    expect((await put(1, pieces[0]!.length)).statusCode).toBe(201);
    await app.close();
    app = await buildApp(t.config, { logger: { level: 'silent' } });
    const listing = await dav(
      'PROPFIND',
      `${UPLOADS}/resume1`,
      { depth: '1' },
      '<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><d:resourcetype /><d:getcontentlength /></d:prop></d:propfind>',
    );
    expect(listing.statusCode, listing.body).toBe(207);
    expect(listing.headers['content-type']).toBe(XML_TYPE);
    const chunks = [
      ...listing.body.matchAll(/<D:href>[^<]*\/resume1\/(\d+)<\/D:href>.*?<D:getcontentlength>(\d+)</gs),
    ].map((m) => [m[1], Number(m[2])]);
    expect(chunks).toEqual([
      [name16(0), pieces[0]!.length],
      [name16(1), pieces[1]!.length],
    ]);
    // The second chunk again (its answer was lost), then the last: nothing is stored twice.
    expect((await put(1, pieces[0]!.length)).statusCode).toBe(201);
    expect((await put(2, pieces[0]!.length + pieces[1]!.length)).statusCode).toBe(201);
    const move = await dav('MOVE', `${UPLOADS}/resume1/.file`, {
      destination: `${FILES}/resumed.bin`,
      'oc-checksum': `SHA1:${sha1(data)}`,
    });
    expect(move.statusCode, move.body).toBe(201);
    expect((await dav('GET', `${FILES}/resumed.bin`)).rawPayload.equals(data)).toBe(true);
  });

  it('stores known content once: a second upload of the same bytes adds no content row', async () => {
    const data = random(CHUNK + 77);
    const send = async (transfer: string, name: string) => {
      expect(
        (await dav('MKCOL', `${UPLOADS}/${transfer}`, { 'oc-total-length': String(data.length) })).statusCode,
      ).toBe(201);
      expect(
        (await dav('PUT', `${UPLOADS}/${transfer}/${name16(0)}`, { 'oc-chunk-offset': '0' }, data))
          .statusCode,
      ).toBe(201);
      const move = await dav('MOVE', `${UPLOADS}/${transfer}/.file`, { destination: `${FILES}/${name}` });
      expect(move.statusCode, move.body).toBe(201);
    };
    // Every file the node holds: stored objects, and parts of unfinished uploads.
    const onNode = async () =>
      (
        await readdir(path.join(t.dataDir, 'nodes', 'local'), { recursive: true, withFileTypes: true })
      ).filter((e) => e.isFile()).length;
    await send('same1', 'same-1.bin');
    const stored = await onNode();
    await send('same2', 'same-2.bin');
    expect(await onNode()).toBe(stored);
    const one = await fileByName('same-1.bin');
    const two = await fileByName('same-2.bin');
    expect(one?.sha1).toBe(two?.sha1);
    expect(one?.id).not.toBe(two?.id);
  });

  it('refuses what would store wrong bytes, with a clear error and nothing kept', async () => {
    const data = random(CHUNK + 5);
    expect(
      (await dav('MKCOL', `${UPLOADS}/bad1`, { 'oc-total-length': String(data.length) })).statusCode,
    ).toBe(201);
    // A chunk ahead of the bytes received.
    const ahead = await dav(
      'PUT',
      `${UPLOADS}/bad1/${name16(1)}`,
      { 'oc-chunk-offset': '1000' },
      data.subarray(1000),
    );
    expect(ahead.statusCode).toBe(409);
    expect(errorCode(ahead)).toBe('offset_mismatch');
    // Past the end.
    const long = await dav(
      'PUT',
      `${UPLOADS}/bad1/${name16(0)}`,
      { 'oc-chunk-offset': '0' },
      random(CHUNK + 6),
    );
    expect(long.statusCode).toBe(413);
    expect((await dav('PUT', `${UPLOADS}/bad1/x`, {}, 'x')).statusCode).toBe(400);
    // A MOVE before every byte is in.
    expect(
      (await dav('PUT', `${UPLOADS}/bad1/${name16(0)}`, { 'oc-chunk-offset': '0' }, data.subarray(0, 1000)))
        .statusCode,
    ).toBe(201);
    const early = await dav('MOVE', `${UPLOADS}/bad1/.file`, { destination: `${FILES}/bad.bin` });
    expect(early.statusCode).toBe(409);
    expect(errorCode(early)).toBe('incomplete');
    expect(
      (await dav('PUT', `${UPLOADS}/bad1/${name16(1)}`, { 'oc-chunk-offset': '1000' }, data.subarray(1000)))
        .statusCode,
    ).toBe(201);
    // A checksum that is not the bytes': refused, no file, the upload gone.
    const wrong = await dav('MOVE', `${UPLOADS}/bad1/.file`, {
      destination: `${FILES}/bad.bin`,
      'oc-checksum': `SHA1:${sha1('something else')}`,
    });
    expect(wrong.statusCode).toBe(422);
    expect(errorCode(wrong)).toBe('hash_mismatch');
    expect(await fileByName('bad.bin')).toBeUndefined();
    expect((await dav('PROPFIND', `${UPLOADS}/bad1`, { depth: '1' })).statusCode).toBe(404);
    // A target folder that does not exist.
    expect((await dav('MKCOL', `${UPLOADS}/bad2`, { 'oc-total-length': '3' })).statusCode).toBe(201);
    expect((await dav('PUT', `${UPLOADS}/bad2/${name16(0)}`, {}, 'abc')).statusCode).toBe(201);
    const nowhere = await dav('MOVE', `${UPLOADS}/bad2/.file`, { destination: `${FILES}/no/such/dir/a.txt` });
    expect(nowhere.statusCode).toBe(409);
    // A Destination that is not percent-encoded UTF-8 names nothing yet: the MOVE's counts.
    const odd = await dav('MKCOL', `${UPLOADS}/odd`, {
      'oc-total-length': '3',
      destination: `${FILES}/a%ZZ.txt`,
    });
    expect(odd.statusCode, odd.body).toBe(201);
    // Larger than any file may be: refused at once, and no folder is left behind.
    const huge = await dav('MKCOL', `${UPLOADS}/huge`, { 'oc-total-length': String(2 ** 52) });
    expect(huge.statusCode).toBe(413);
    expect((await dav('PROPFIND', `${UPLOADS}/huge`, { depth: '1' })).statusCode).toBe(404);
    // The same folder twice, and a missing length.
    expect((await dav('MKCOL', `${UPLOADS}/bad2`, { 'oc-total-length': '3' })).statusCode).toBe(405);
    expect((await dav('MKCOL', `${UPLOADS}/bad3`)).statusCode).toBe(201);
    const noLength = await dav('PUT', `${UPLOADS}/bad3/${name5(1)}`, {}, 'abc');
    expect(noLength.statusCode).toBe(400);
    expect(noLength.json().error.message).toMatch(/OC-Total-Length/);
  });

  it('takes an empty file through an upload folder with no chunk', async () => {
    expect((await dav('MKCOL', `${UPLOADS}/empty`, { 'oc-total-length': '0' })).statusCode).toBe(201);
    const move = await dav('MOVE', `${UPLOADS}/empty/.file`, {
      destination: `${FILES}/empty.txt`,
      'oc-checksum': `SHA1:${sha1('')}`,
    });
    expect(move.statusCode, move.body).toBe(201);
    expect(await fileByName('empty.txt')).toMatchObject({ size: 0, sha1: sha1('') });
  });

  it('drops an upload on DELETE, and keeps each user to their own uploads', async () => {
    expect((await dav('MKCOL', `${UPLOADS}/gone`, { 'oc-total-length': String(CHUNK * 2) })).statusCode).toBe(
      201,
    );
    expect((await dav('PUT', `${UPLOADS}/gone/${name16(0)}`, {}, random(CHUNK + 1))).statusCode).toBe(201);
    // Bob sees none of it, and cannot write into it.
    const asBob = (method: string, url: string) =>
      app.inject({ method: method as 'GET', url, headers: { ...bobBasic, depth: '1' } });
    expect((await asBob('PROPFIND', `${UPLOADS}/gone`)).statusCode).toBe(404);
    expect((await asBob('DELETE', `${UPLOADS}/gone`)).statusCode).toBe(404);
    expect((await asBob('PROPFIND', '/remote.php/dav/uploads/bob/gone')).statusCode).toBe(404);
    expect((await app.inject({ method: 'MKCOL' as 'GET', url: `${UPLOADS}/anon` })).statusCode).toBe(401);
    expect((await dav('DELETE', `${UPLOADS}/gone`)).statusCode).toBe(204);
    expect((await dav('PROPFIND', `${UPLOADS}/gone`, { depth: '1' })).statusCode).toBe(404);
    expect((await dav('DELETE', `${UPLOADS}/gone`)).statusCode).toBe(404);
  });
});
