import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/knex.ts';
import { migrationSource } from '../../src/db/migrations.ts';
import { Repositories } from '../../src/repositories/index.ts';
import { numericFileId } from '../../src/util/file-ids.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { random, sha1 } from '../support/bytes.ts';
import { databaseBefore, testDatabaseUrl } from '../support/db.ts';
import { parseMultistatus } from '../support/multistatus.ts';

const OC = 'http://owncloud.org/ns';
const NC = 'http://nextcloud.org/ns';
const FILES = '/remote.php/dav/files/alice';
const VERSIONS = '/remote.php/dav/versions/alice/versions';

/** What the apps' "Versions" view asks for. */
const VERSION_PROPS = `<?xml version="1.0"?>
<d:propfind xmlns:d="DAV:" xmlns:nc="http://nextcloud.org/ns"><d:prop>
  <d:getcontentlength/><d:getcontenttype/><d:getlastmodified/><d:getetag/><nc:version-author/><nc:has-preview/>
</d:prop></d:propfind>`;

describe('Nextcloud versions at /remote.php/dav/versions/<user>/', () => {
  let t: TestApp;
  let clock = Date.now();
  let basic: Record<string, string>;
  let bobBasic: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp({}, { now: () => clock });
    const alice = await t.user('alice');
    const bob = await t.user('bob');
    basic = {
      authorization: `Basic ${Buffer.from(`alice:${await t.appPassword(alice.headers, 'Phone')}`).toString('base64')}`,
    };
    bobBasic = {
      authorization: `Basic ${Buffer.from(`bob:${await t.appPassword(bob.headers)}`).toString('base64')}`,
    };
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
      ...(payload ? { payload } : {}),
    });
  const fileIdOf = async (path: string) => {
    const res = await dav(
      'PROPFIND',
      `${FILES}/${path}`,
      { depth: '0' },
      '<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:fileid/></d:prop></d:propfind>',
    );
    return parseMultistatus(res.body)[0]!.props.get(`{${OC}}fileid`)!;
  };

  it('lists, downloads, restores and deletes the versions of a file named by its oc:fileid', async () => {
    const v1 = random(100);
    const v2 = random(200);
    const v3 = random(300);
    await dav('PUT', `${FILES}/notes.txt`, { 'x-oc-mtime': '1700000000' }, v1);
    clock += 1000;
    await dav('PUT', `${FILES}/notes.txt`, { 'x-oc-mtime': '1700000100' }, v2);
    clock += 1000;
    await dav('PUT', `${FILES}/notes.txt`, {}, v3);
    const fileId = await fileIdOf('notes.txt');

    const listing = await dav('PROPFIND', `${VERSIONS}/${fileId}`, { depth: '1' }, VERSION_PROPS);
    expect(listing.statusCode, listing.body).toBe(207);
    expect(listing.headers['content-type']).toBe('application/xml; charset=utf-8');
    const [folder, ...older] = parseMultistatus(listing.body);
    expect(folder!.href).toBe(`${VERSIONS}/${fileId}/`);
    // The older contents, newest first; the current one is the file itself.
    expect(older.map((v) => v.props.get('{DAV:}getetag'))).toEqual([`"${sha1(v2)}"`, `"${sha1(v1)}"`]);
    expect(older.map((v) => v.props.get('{DAV:}getcontentlength'))).toEqual(['200', '100']);
    expect(older[0]!.props.get('{DAV:}getlastmodified')).toBe(new Date(1700000100_000).toUTCString());
    expect(older[0]!.props.get(`{${NC}}version-author`)).toBe('Phone');
    expect(older[0]!.missing).toContain(`{${NC}}has-preview`);

    const oldest = older[1]!.href;
    const got = await dav('GET', oldest);
    expect(got.statusCode).toBe(200);
    expect(got.rawPayload.equals(v1)).toBe(true);

    const restored = await dav('MOVE', oldest, {
      destination: 'http://localhost:80/remote.php/dav/versions/alice/restore/target',
    });
    expect(restored.statusCode, restored.body).toBe(204);
    expect(restored.headers['oc-etag']).toBe(`"${sha1(v1)}"`);
    expect((await dav('GET', `${FILES}/notes.txt`)).rawPayload.equals(v1)).toBe(true);
    const after = parseMultistatus(
      (await dav('PROPFIND', `${VERSIONS}/${fileId}`, { depth: '1' }, VERSION_PROPS)).body,
    );
    expect(after.slice(1).map((v) => v.props.get('{DAV:}getetag'))).toEqual([
      `"${sha1(v3)}"`,
      `"${sha1(v2)}"`,
    ]);

    expect((await dav('DELETE', after[2]!.href)).statusCode).toBe(204);
    expect(
      parseMultistatus((await dav('PROPFIND', `${VERSIONS}/${fileId}`, { depth: '1' })).body),
    ).toHaveLength(2);
  });

  it("answers 404 for another user's versions, an unknown file or version, and refuses a MOVE elsewhere", async () => {
    await dav('PUT', `${FILES}/solo.txt`, {}, 'one');
    await dav('PUT', `${FILES}/solo.txt`, {}, 'two');
    const fileId = await fileIdOf('solo.txt');
    const mine = parseMultistatus((await dav('PROPFIND', `${VERSIONS}/${fileId}`, { depth: '1' })).body);
    expect(mine).toHaveLength(2);
    const asBob = (method: string, url: string) =>
      t.app.inject({ method: method as 'GET', url, headers: { ...bobBasic, depth: '1' } });
    expect((await asBob('PROPFIND', `${VERSIONS}/${fileId}`)).statusCode).toBe(404);
    expect((await asBob('PROPFIND', `/remote.php/dav/versions/bob/versions/${fileId}`)).statusCode).toBe(404);
    expect((await dav('PROPFIND', `${VERSIONS}/12345`, { depth: '1' })).statusCode).toBe(404);
    expect((await dav('GET', `${VERSIONS}/${fileId}/nope`)).statusCode).toBe(404);
    const elsewhere = await dav('MOVE', mine[1]!.href, { destination: `${FILES}/copy.txt` });
    expect(elsewhere.statusCode).toBe(403);
    expect(elsewhere.json().error.code).toBe('forbidden');
    expect(
      (await t.app.inject({ method: 'PROPFIND' as 'GET', url: `${VERSIONS}/${fileId}` })).statusCode,
    ).toBe(401);
  });
});

describe('oc:fileids of an existing database', () => {
  it('are given to every entry by the migration, as the files mount answers them', async () => {
    const database = await testDatabaseUrl();
    const db = createDb(database.url);
    try {
      const { userId } = await databaseBefore(db, '022_oc_fileids');
      const ids = Array.from({ length: 1203 }, (_, i) => `entry-${i}`);
      for (let i = 0; i < ids.length; i += 400) {
        await db('user_files').insert(
          ids.slice(i, i + 400).map((id) => ({
            id,
            user_id: userId,
            parent_id: '',
            kind: 'folder',
            name: id,
            live_name: id,
            size: 0,
            status: 'active',
            created_at: 1,
            updated_at: 1,
          })),
        );
      }
      await db.migrate.latest({ migrationSource });
      const repos = new Repositories(db);
      for (const id of [ids[0]!, ids[1202]!]) {
        expect((await repos.files.findByOcFileId(userId, numericFileId(id)))?.id).toBe(id);
      }
      expect(await db('user_files').whereNull('oc_fileid').count({ n: '*' }).first()).toMatchObject({ n: 0 });
    } finally {
      await db.destroy();
      await database.drop();
    }
  });
});
