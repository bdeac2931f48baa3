import { PassThrough } from 'node:stream';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random, sha1 } from '../support/bytes.ts';
import { CHUNK, multipartForm, postBatchForm, postForm, uploader } from '../support/uploads.ts';

type User = Awaited<ReturnType<TestApp['user']>>;
interface Entry {
  id: string;
  name: string;
  kind: 'file' | 'folder';
  parentId: string | null;
  size: number;
  shared?: { role: string; owner: { username: string } };
}

/**
 * Shares with users and groups over the REST API: every route a recipient reaches with the
 * owner's ids, as viewer and as editor, and what is refused (nothing changed after).
 */
describe('shares with users and groups', () => {
  let t: TestApp;
  let owner: User;
  let ed: User;
  let vi: User;
  let gm: User;
  let stranger: User;
  let team: Entry;
  let docs: Entry;
  let note: Entry;
  let secret: Entry;
  const noteBytes = random(3000);

  const as = (user: User) => (method: string, url: string, payload?: object) =>
    t.app.inject({ method: method as 'GET', url, headers: user.headers, ...(payload ? { payload } : {}) });
  const ok = async <T>(
    res: Promise<{ statusCode: number; body: string; json: () => unknown }>,
    status = 200,
  ) => {
    const r = await res;
    expect(r.statusCode, r.body).toBe(status);
    return r.json() as T;
  };
  /** The owner's tree below Team, as names and sizes: what a refused request must leave alone. */
  const tree = async (): Promise<string[]> => {
    const out: string[] = [];
    const walk = async (id: string, prefix: string) => {
      const { items } = await ok<{ items: Entry[] }>(as(owner)('GET', `/api/files?parentId=${id}`));
      for (const e of items) {
        out.push(`${prefix}/${e.name}:${e.size}`);
        if (e.kind === 'folder') await walk(e.id, `${prefix}/${e.name}`);
      }
    };
    await walk(team.id, '');
    return out.sort();
  };
  const usedBytes = async (user: User) =>
    (await ok<{ usage: { usedBytes: number } }>(as(user)('GET', '/api/auth/me'))).usage.usedBytes;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) });
    owner = await t.user('owner'); // the first account: the admin
    ed = await t.user('edith');
    vi = await t.user('vicky');
    gm = await t.user('gina');
    stranger = await t.user('stranger');
    team = (await ok<{ file: Entry }>(as(owner)('POST', '/api/folders', { name: 'Team' }), 201)).file;
    docs = (
      await ok<{ file: Entry }>(as(owner)('POST', '/api/folders', { name: 'Docs', parentId: team.id }), 201)
    ).file;
    note = (await ok<{ file: Entry }>(postForm(t, owner.headers, 'note.txt', noteBytes, team.id), 201)).file;
    secret = (await ok<{ file: Entry }>(postForm(t, owner.headers, 'secret.txt', random(10)), 201)).file;
  });
  afterAll(() => t.close());

  it('lets the owner add, list, change and refuse members with clear errors', async () => {
    const o = as(owner);
    const edMember = (
      await ok<{ member: { id: string; username: string; role: string } }>(
        o('POST', `/api/files/${team.id}/members`, { username: 'edith', role: 'editor' }),
        201,
      )
    ).member;
    expect(edMember).toMatchObject({ username: 'edith', role: 'editor' });
    await ok(o('POST', `/api/files/${team.id}/members`, { username: 'vicky', role: 'editor' }), 201);

    const self = await o('POST', `/api/files/${team.id}/members`, { username: 'owner', role: 'viewer' });
    expect([self.statusCode, errorCode(self)]).toEqual([400, 'bad_request']);
    const unknown = await o('POST', `/api/files/${team.id}/members`, { username: 'nobody', role: 'viewer' });
    expect([unknown.statusCode, unknown.json().error.message]).toEqual([
      404,
      'there is no user named "nobody"',
    ]);
    const noGroup = await o('POST', `/api/files/${team.id}/members`, { group: 'nope', role: 'viewer' });
    expect(noGroup.statusCode).toBe(404);
    const twice = await o('POST', `/api/files/${team.id}/members`, { username: 'edith', role: 'viewer' });
    expect([twice.statusCode, errorCode(twice)]).toEqual([409, 'already_member']);
    const badRole = await o('POST', `/api/files/${team.id}/members`, { username: 'gina', role: 'admin' });
    expect(badRole.statusCode).toBe(400);

    const { items } = await ok<{ items: Array<{ id: string; username: string; role: string }> }>(
      o('GET', `/api/files/${team.id}/members`),
    );
    expect(items.map((m) => [m.username, m.role])).toEqual([
      ['edith', 'editor'],
      ['vicky', 'editor'],
    ]);
    const viMember = items.find((m) => m.username === 'vicky')!;
    expect(
      (
        await ok<{ member: { role: string } }>(
          o('PATCH', `/api/files/${team.id}/members/${viMember.id}`, { role: 'viewer' }),
        )
      ).member.role,
    ).toBe('viewer');

    // Members are the owner's business: a recipient is told so, a stranger does not learn the id.
    expect((await as(ed)('GET', `/api/files/${team.id}/members`)).statusCode).toBe(403);
    expect(
      (await as(ed)('POST', `/api/files/${team.id}/members`, { username: 'gina', role: 'editor' }))
        .statusCode,
    ).toBe(403);
    expect((await as(stranger)('GET', `/api/files/${team.id}/members`)).statusCode).toBe(404);
  });

  it('shows what is shared under "shared with me" and at the top of the recipient\'s tree', async () => {
    const shared = await ok<{ items: Array<Record<string, unknown>> }>(as(ed)('GET', '/api/shared-with-me'));
    expect(shared.items).toEqual([
      { id: team.id, name: 'Team', kind: 'folder', size: 0, role: 'editor', owner: { username: 'owner' } },
    ]);
    // A name of their own wins; the share gets the owner's name added.
    await ok(as(vi)('POST', '/api/folders', { name: 'Team' }), 201);
    const root = await ok<{ items: Entry[]; total: number }>(as(vi)('GET', '/api/files'));
    expect(root.total).toBe(2);
    expect(root.items.map((e) => [e.name, e.shared?.role ?? 'own', e.parentId])).toEqual([
      ['Team', 'own', null],
      ['Team (owner)', 'viewer', null],
    ]);
    // Paging over the root takes the mounts after one's own entries.
    const second = await ok<{ items: Entry[] }>(as(vi)('GET', '/api/files?limit=1&offset=1'));
    expect(second.items.map((e) => e.name)).toEqual(['Team (owner)']);

    const inside = await ok<{ items: Entry[] }>(as(vi)('GET', `/api/files?parentId=${team.id}`));
    expect(inside.items.map((e) => [e.name, e.shared?.role, e.shared?.owner.username])).toEqual([
      ['Docs', 'viewer', 'owner'],
      ['note.txt', 'viewer', 'owner'],
    ]);
    // Breadcrumbs start at the share, named as it is mounted.
    const path = await ok<{ items: Entry[] }>(as(vi)('GET', `/api/files/${docs.id}/path`));
    expect(path.items.map((e) => [e.name, e.parentId])).toEqual([
      ['Team (owner)', null],
      ['Docs', team.id],
    ]);
    const got = await ok<{ file: Entry }>(as(vi)('GET', `/api/files/${note.id}`));
    expect(got.file.shared).toEqual({ role: 'viewer', owner: { username: 'owner' } });
    // Searching stays within one's own files.
    expect((await ok<{ items: Entry[] }>(as(vi)('GET', '/api/files?q=note'))).items).toEqual([]);
  });

  it('answers a stranger about an existing id as about a missing one, after the same queries', async () => {
    const nosy = await t.user('nosy');
    const hidden = (await ok<{ file: Entry }>(as(owner)('POST', '/api/folders', { name: 'Hidden' }), 201))
      .file;
    const deep = (
      await ok<{ file: Entry }>(as(owner)('POST', '/api/folders', { name: 'Deep', parentId: hidden.id }), 201)
    ).file;
    const ask = async (id: string) => {
      let queries = 0;
      const count = () => queries++;
      t.app.services.db.on('query', count);
      try {
        const res = await as(nosy)('GET', `/api/files/${id}`);
        return { status: res.statusCode, body: res.body, queries };
      } finally {
        t.app.services.db.off('query', count);
      }
    };
    const existing = await ask(deep.id);
    const missing = await ask('00000000-0000-4000-8000-000000000000');
    expect(existing.status).toBe(404);
    // Same answer, and the same work: no walk up the owner's tree for someone nothing is shared with.
    expect(existing).toEqual(missing);
  });

  it("names the root's mounts in a number of queries that does not grow with the mounts", async () => {
    const many = await t.user('mona');
    const rootQueries = async () => {
      let queries = 0;
      const count = () => queries++;
      t.app.services.db.on('query', count);
      try {
        const root = await ok<{ items: Entry[] }>(as(many)('GET', '/api/files'));
        return { queries, names: root.items.map((e) => e.name) };
      } finally {
        t.app.services.db.off('query', count);
      }
    };
    // Her own "M0" and "M1 (owner)" take the mounts' first and second choices of name.
    await ok(as(many)('POST', '/api/folders', { name: 'M0' }), 201);
    await ok(as(many)('POST', '/api/folders', { name: 'M1 (owner)' }), 201);
    const shareAs = async (name: string) => {
      const folder = (await ok<{ file: Entry }>(as(owner)('POST', '/api/folders', { name }), 201)).file;
      await ok(
        as(owner)('POST', `/api/files/${folder.id}/members`, { username: 'mona', role: 'viewer' }),
        201,
      );
    };
    await shareAs('M0');
    const one = await rootQueries();
    expect(one.names).toEqual(['M0', 'M1 (owner)', 'M0 (owner)']);
    for (let i = 1; i < 8; i++) await shareAs(`M${i}`);
    await ok(as(owner)('POST', '/api/folders', { name: 'M1 (owner)' }), 201).then(async (r) => {
      const id = (r as { file: Entry }).file.id;
      await ok(as(owner)('POST', `/api/files/${id}/members`, { username: 'mona', role: 'viewer' }), 201);
    });
    const eight = await rootQueries();
    expect(eight.names).toEqual([
      'M0',
      'M1 (owner)',
      'M0 (owner)',
      'M1',
      'M2',
      'M3',
      'M4',
      'M5',
      'M6',
      'M7',
      'M1 (owner) (owner)',
    ]);
    expect(eight.queries).toBe(one.queries);
    // A second "M0" of the same owner (from another folder of theirs) is numbered.
    const sub = (await ok<{ file: Entry }>(as(owner)('POST', '/api/folders', { name: 'Mona sub' }), 201))
      .file;
    const again = (
      await ok<{ file: Entry }>(as(owner)('POST', '/api/folders', { name: 'M0', parentId: sub.id }), 201)
    ).file;
    await ok(as(owner)('POST', `/api/files/${again.id}/members`, { username: 'mona', role: 'viewer' }), 201);
    expect((await rootQueries()).names.at(-1)).toBe('M0 (owner 2)');
  });

  it("lets a viewer read everything and change nothing (403, the owner's tree unchanged)", async () => {
    const v = as(vi);
    const before = await tree();
    const content = await v('GET', `/api/files/${note.id}/content`);
    expect(content.statusCode).toBe(200);
    expect(Buffer.from(content.rawPayload).equals(noteBytes)).toBe(true);
    const range = await t.app.inject({
      url: `/api/files/${note.id}/content`,
      headers: { ...vi.headers, range: 'bytes=10-19' },
    });
    expect([range.statusCode, range.rawPayload.length]).toEqual([206, 10]);
    const etag = content.headers.etag as string;
    const cached = await t.app.inject({
      url: `/api/files/${note.id}/content`,
      headers: { ...vi.headers, 'if-none-match': etag },
    });
    expect(cached.statusCode).toBe(304);
    expect(await ok(v('GET', `/api/files/${team.id}/summary`))).toEqual({
      files: 1,
      folders: 1,
      bytes: 3000,
    });
    const versions = await ok<{ items: Array<{ id: string; current: boolean }> }>(
      v('GET', `/api/files/${note.id}/versions`),
    );
    expect(versions.items).toHaveLength(1);
    expect(
      (await v('GET', `/api/files/${note.id}/versions/${versions.items[0]!.id}/content`)).statusCode,
    ).toBe(200);

    const refused = [
      await v('POST', '/api/folders', { name: 'x', parentId: team.id }),
      await postForm(t, vi.headers, 'x.txt', random(5), team.id),
      await postBatchForm(t, vi.headers, [{ name: 'y.txt', data: random(5), parentId: docs.id }]),
      await uploader(t, vi.headers).create({
        name: 'z.bin',
        size: 10,
        sha1: sha1(random(10)),
        parentId: team.id,
      }),
      await v('PATCH', `/api/files/${note.id}`, { name: 'renamed.txt' }),
      await v('PATCH', `/api/files/${note.id}`, { parentId: docs.id }),
      await v('DELETE', `/api/files/${note.id}`),
      await v('DELETE', `/api/files/${docs.id}`),
      await v('POST', `/api/files/${note.id}/versions/${versions.items[0]!.id}/restore`),
      await v('POST', `/api/files/${team.id}/shares`, {}),
      await v('POST', '/api/restore', { folderId: team.id, at: new Date().toISOString() }),
    ];
    expect(refused.map((r) => r.statusCode)).toEqual(refused.map(() => 403));
    expect(refused[0]!.json().error.message).toMatch(/as a viewer/);
    expect(await tree()).toEqual(before);
  });

  it("lets an editor add, upload, rename, move and trash inside, within the owner's tree and history", async () => {
    const e = as(ed);
    const ownerBytes = await usedBytes(owner);
    const edBytes = await usedBytes(ed);
    const made = (
      await ok<{ file: Entry }>(e('POST', '/api/folders', { name: 'From ed', parentId: team.id }), 201)
    ).file;
    const one = (await ok<{ file: Entry }>(postForm(t, ed.headers, 'one.bin', random(1000), made.id), 201))
      .file;
    const batch = await ok<{ files: Entry[] }>(
      postBatchForm(t, ed.headers, [
        { name: 'b1.bin', data: random(100), parentId: made.id },
        { name: 'b2.bin', data: random(200), parentId: made.id },
      ]),
      201,
    );
    expect(batch.files).toHaveLength(2);
    // A chunked upload: the editor's session (resumable by them only), the owner's file.
    const up = uploader(t, ed.headers);
    const big = random(CHUNK * 2 + 5);
    const created = await ok<{ uploadId: string }>(
      up.create({ name: 'big.bin', size: big.length, sha1: sha1(big), parentId: made.id }),
      201,
    );
    expect((await up.put(created.uploadId, 0, big.subarray(0, CHUNK))).statusCode).toBe(204);
    expect((await uploader(t, owner.headers).get(created.uploadId)).statusCode).toBe(404);
    const resumed = await ok<{ receivedChunks: number[] }>(up.get(created.uploadId));
    expect(resumed.receivedChunks).toEqual([0]);
    expect((await up.put(created.uploadId, 1, big.subarray(CHUNK, 2 * CHUNK))).statusCode).toBe(204);
    expect((await up.put(created.uploadId, 2, big.subarray(2 * CHUNK))).statusCode).toBe(204);
    const done = await ok<{ file: Entry }>(up.complete(created.uploadId), 201);
    expect(done.file.parentId).toBe(made.id);

    const added = 1000 + 100 + 200 + big.length;
    expect(await usedBytes(owner)).toBe(ownerBytes + added);
    expect(await usedBytes(ed)).toBe(edBytes);

    await ok(e('PATCH', `/api/files/${one.id}`, { name: 'uno.bin' }));
    await ok(e('PATCH', `/api/files/${one.id}`, { parentId: docs.id }));
    expect((await e('DELETE', `/api/files/${batch.files[0]!.id}`)).statusCode).toBe(204);
    const trash = await ok<{ items: Entry[] }>(as(owner)('GET', '/api/trash'));
    expect(trash.items.map((i) => i.name)).toContain('b1.bin');
    expect((await ok<{ items: Entry[] }>(e('GET', '/api/trash'))).items).toEqual([]);

    const before = await tree();
    // The shared folder itself stays the owner's; nothing moves between people's files.
    const refused = [
      await e('PATCH', `/api/files/${team.id}`, { name: 'Mine' }),
      await e('DELETE', `/api/files/${team.id}`),
      await e('PATCH', `/api/files/${made.id}`, { parentId: null }),
      await e('PATCH', `/api/files/${note.id}`, { parentId: secret.id }),
      await as(owner)('PATCH', `/api/files/${secret.id}`, { parentId: (await ownFolder(ed)).id }),
      await e('DELETE', `/api/files/${note.id}/versions/whatever`),
    ];
    expect(refused.map((r) => r.statusCode)).toEqual([403, 403, 400, 404, 404, 403]);
    expect(refused[2]!.json().error.message).toMatch(/different people's files/);
    expect(await tree()).toEqual(before);

    // The owner's history names the editor; the editor reads the share's history from the share down.
    const own = await ok<{ items: Array<{ action: string; path: string; actor: { username?: string } }> }>(
      as(owner)('GET', `/api/history?folderId=${team.id}`),
    );
    const moved = own.items.find((i) => i.action === 'moved')!;
    expect([moved.path, moved.actor.username]).toEqual(['/Team/Docs/uno.bin', 'edith']);
    const theirs = await ok<{
      items: Array<{ action: string; path: string | null; actor: { username?: string } }>;
    }>(e('GET', `/api/history?folderId=${team.id}`));
    expect(theirs.items.length).toBe(own.items.length);
    expect(theirs.items.find((i) => i.action === 'moved')?.path).toBe('/Team/Docs/uno.bin');
    // Outside a share a recipient has no history of the owner's.
    expect((await as(stranger)('GET', `/api/history?folderId=${team.id}`)).statusCode).toBe(404);
  });

  it("lets an editor restore a version, and keeps deleting versions the owner's", async () => {
    const form = multipartForm('note.txt', random(50), team.id, { onConflict: 'replace' });
    const replaced = await t.app.inject({
      method: 'POST',
      url: '/api/files',
      payload: form.payload,
      headers: { ...form.headers, ...ed.headers },
    });
    expect(replaced.statusCode, replaced.body).toBe(201);
    const versions = await ok<{ items: Array<{ id: string; current: boolean; size: number }> }>(
      as(ed)('GET', `/api/files/${note.id}/versions`),
    );
    const old = versions.items.find((v) => !v.current)!;
    expect(old.size).toBe(3000);
    expect((await as(vi)('POST', `/api/files/${note.id}/versions/${old.id}/restore`)).statusCode).toBe(403);
    await ok(as(ed)('POST', `/api/files/${note.id}/versions/${old.id}/restore`));
    expect((await ok<{ file: Entry }>(as(owner)('GET', `/api/files/${note.id}`))).file.size).toBe(3000);
    expect((await as(ed)('DELETE', `/api/files/${note.id}/versions/${old.id}`)).statusCode).toBe(403);
  });

  it('answers 404 to someone it is not shared with, on every route', async () => {
    // An image's thumbnail: the viewer gets it, the stranger does not learn it is there.
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#c00' } })
      .png()
      .toBuffer();
    const pic = (await ok<{ file: Entry }>(postForm(t, owner.headers, 'pic.png', png, docs.id), 201)).file;
    const thumb = await as(vi)('GET', `/api/files/${pic.id}/thumbnail`);
    expect([thumb.statusCode, thumb.headers['content-type']]).toEqual([200, 'image/webp']);
    const s = as(stranger);
    const responses = [
      await s('GET', `/api/files/${team.id}`),
      await s('GET', `/api/files?parentId=${team.id}`),
      await s('GET', `/api/files/${note.id}/content`),
      await s('GET', `/api/files/${note.id}/path`),
      await s('GET', `/api/files/${team.id}/summary`),
      await s('GET', `/api/files/${note.id}/versions`),
      await s('POST', '/api/folders', { name: 'x', parentId: team.id }),
      await postForm(t, stranger.headers, 'x.txt', random(5), team.id),
      await s('PATCH', `/api/files/${note.id}`, { name: 'x' }),
      await s('DELETE', `/api/files/${note.id}`),
      await s('POST', `/api/files/${team.id}/shares`, {}),
      await s('GET', `/api/files/${pic.id}/thumbnail`),
      await s('GET', `/api/files/${secret.id}`),
      await as(ed)('GET', `/api/files/${secret.id}/content`),
    ];
    expect(responses.map((r) => r.statusCode)).toEqual(responses.map(() => 404));
  });

  it("never resumes an editor's upload into the share as one into their own folder, or back", async () => {
    const up = uploader(t, ed.headers);
    const data = random(CHUNK + 5);
    const intoShare = await ok<{ uploadId: string }>(
      up.create({ name: 'same.bin', size: data.length, sha1: sha1(data), parentId: team.id }),
      201,
    );
    expect((await up.put(intoShare.uploadId, 0, data.subarray(0, CHUNK))).statusCode).toBe(204);
    // The same bytes for her own root: a session of its own, not the one bound for the owner's tree.
    const intoOwn = await up.create({ name: 'same.bin', size: data.length, sha1: sha1(data) });
    expect(intoOwn.statusCode, intoOwn.body).toBe(201);
    expect(intoOwn.json().uploadId).not.toBe(intoShare.uploadId);
    // Asked again for the share, the first one is resumed.
    const again = await up.create({
      name: 'same.bin',
      size: data.length,
      sha1: sha1(data),
      parentId: team.id,
    });
    expect(again.json()).toMatchObject({ status: 'resumed', uploadId: intoShare.uploadId });
    for (const id of [intoShare.uploadId, intoOwn.json().uploadId as string])
      expect((await up.abort(id)).statusCode).toBe(204);
  });

  it("charges an editor's upload to the owner's quota, refused over it as the owner's would be", async () => {
    // A chunked upload opened while the owner had room is counted against the owner at complete.
    const late = random(800);
    const up = uploader(t, ed.headers);
    const opened = await ok<{ uploadId: string }>(
      up.create({ name: 'late.bin', size: late.length, sha1: sha1(late), parentId: team.id }),
      201,
    );
    expect((await up.put(opened.uploadId, 0, late)).statusCode).toBe(204);
    const used = await usedBytes(owner);
    const me = await ok<{ user: { id: string } }>(as(owner)('GET', '/api/auth/me'));
    await ok(as(owner)('PATCH', `/api/admin/users/${me.user.id}`, { quotaBytes: used + 500 }));
    try {
      const before = await tree();
      const byOwner = await postForm(t, owner.headers, 'o.bin', random(800), team.id);
      const byEditor = await postForm(t, ed.headers, 'e.bin', random(800), team.id);
      expect([byEditor.statusCode, errorCode(byEditor)]).toEqual([byOwner.statusCode, errorCode(byOwner)]);
      expect([byEditor.statusCode, errorCode(byEditor)]).toEqual([413, 'quota_exceeded']);
      const chunked = await uploader(t, ed.headers).create({
        name: 'c.bin',
        size: 800,
        sha1: sha1(random(800)),
        parentId: team.id,
      });
      expect([chunked.statusCode, errorCode(chunked)]).toEqual([413, 'quota_exceeded']);
      const completed = await up.complete(opened.uploadId);
      expect([completed.statusCode, errorCode(completed)]).toEqual([413, 'quota_exceeded']);
      // The editor's own quota is theirs: a file of theirs still fits.
      expect((await postForm(t, ed.headers, 'mine.bin', random(800))).statusCode).toBe(201);
      expect(await tree()).toEqual(before);
    } finally {
      await ok(as(owner)('PATCH', `/api/admin/users/${me.user.id}`, { quotaBytes: null }));
    }
  });

  it('follows group membership at once, and lets a recipient leave', async () => {
    const admin = as(owner);
    const group = (
      await ok<{ group: { id: string; name: string } }>(
        admin('POST', '/api/admin/groups', { name: 'family' }),
        201,
      )
    ).group;
    expect((await admin('POST', '/api/admin/groups', { name: 'family' })).statusCode).toBe(409);
    expect((await as(ed)('POST', '/api/admin/groups', { name: 'mine' })).statusCode).toBe(403);
    await ok(admin('POST', `/api/admin/groups/${group.id}/members`, { username: 'gina' }), 201);
    expect(
      (await admin('POST', `/api/admin/groups/${group.id}/members`, { username: 'gina' })).statusCode,
    ).toBe(409);
    expect(
      (await admin('POST', `/api/admin/groups/${group.id}/members`, { username: 'ghost' })).statusCode,
    ).toBe(404);
    const member = (
      await ok<{ member: { id: string; group: string } }>(
        admin('POST', `/api/files/${docs.id}/members`, { group: 'family', role: 'viewer' }),
        201,
      )
    ).member;
    expect(member.group).toBe('family');
    expect(
      (await ok<{ items: Entry[] }>(as(gm)('GET', '/api/shared-with-me'))).items.map((i) => i.name),
    ).toEqual(['Docs']);
    expect((await as(gm)('GET', `/api/files?parentId=${docs.id}`)).statusCode).toBe(200);
    // Out of the group: the next request answers 404; back in: reached again.
    expect((await admin('DELETE', `/api/admin/groups/${group.id}/members/gina`)).statusCode).toBe(204);
    expect((await as(gm)('GET', `/api/files?parentId=${docs.id}`)).statusCode).toBe(404);
    await ok(admin('POST', `/api/admin/groups/${group.id}/members`, { username: 'gina' }), 201);
    expect((await as(gm)('GET', `/api/files/${docs.id}`)).statusCode).toBe(200);
    expect(
      (
        await ok<{ items: Array<{ username: string }> }>(
          admin('GET', `/api/admin/groups/${group.id}/members`),
        )
      ).items.map((m) => m.username),
    ).toEqual(['gina']);

    // Leaving a group's share hides it from that member only.
    expect((await as(gm)('DELETE', `/api/shared-with-me/${docs.id}`)).statusCode).toBe(204);
    expect((await ok<{ items: Entry[] }>(as(gm)('GET', '/api/shared-with-me'))).items).toEqual([]);
    expect((await as(gm)('GET', `/api/files/${docs.id}`)).statusCode).toBe(404);
    expect((await as(gm)('DELETE', `/api/shared-with-me/${docs.id}`)).statusCode).toBe(404);
    // Leaving a share with oneself removes the member: the owner sees them gone.
    expect((await as(vi)('DELETE', `/api/shared-with-me/${team.id}`)).statusCode).toBe(204);
    const left = await ok<{ items: Array<{ username?: string; group?: string }> }>(
      admin('GET', `/api/files/${team.id}/members`),
    );
    expect(left.items.map((m) => m.username)).toEqual(['edith']);

    // Deleting the group ends what it reached.
    await ok(admin('POST', `/api/admin/groups/${group.id}/members`, { username: 'stranger' }), 201);
    expect((await as(stranger)('GET', `/api/files/${docs.id}`)).statusCode).toBe(200);
    expect((await admin('DELETE', `/api/admin/groups/${group.id}`)).statusCode).toBe(204);
    expect((await as(stranger)('GET', `/api/files/${docs.id}`)).statusCode).toBe(404);
    expect((await admin('DELETE', `/api/admin/groups/${group.id}`)).statusCode).toBe(404);
    expect((await admin('GET', `/api/files/${docs.id}/members`)).json().items).toEqual([]);
  });

  it('finds people and groups to share with by name prefix', async () => {
    await ok(as(owner)('POST', '/api/admin/groups', { name: 'editors_100%' }), 201);
    const found = await ok<{ users: Array<{ username: string }>; groups: Array<{ name: string }> }>(
      as(ed)('GET', '/api/directory?q=e'),
    );
    expect(found.users).toEqual([]); // only "edith", who is asking
    expect(found.groups).toEqual([{ name: 'editors_100%' }]);
    const literal = await ok<{ groups: unknown[] }>(
      as(ed)('GET', `/api/directory?q=${encodeURIComponent('editors_1')}`),
    );
    expect(literal.groups).toHaveLength(1);
    expect((await ok<{ groups: unknown[] }>(as(ed)('GET', '/api/directory?q=editors%25'))).groups).toEqual(
      [],
    );
    expect((await ok<{ users: unknown[] }>(as(owner)('GET', '/api/directory?q=v'))).users).toEqual([
      { username: 'vicky' },
    ]);
  });

  it("adds nothing to the owner's tree when the share is revoked while an upload's body streams", async () => {
    const inflight = (await ok<{ file: Entry }>(as(owner)('POST', '/api/folders', { name: 'Inflight' }), 201))
      .file;
    const member = (
      await ok<{ member: { id: string } }>(
        as(owner)('POST', `/api/files/${inflight.id}/members`, { username: 'edith', role: 'editor' }),
        201,
      )
    ).member;
    const form = multipartForm('streamed.bin', random(64 * 1024), inflight.id);
    const body = new PassThrough();
    const answer = t.app.inject({
      method: 'POST',
      url: '/api/files',
      payload: body,
      headers: { ...form.headers, ...ed.headers },
    });
    body.write(form.payload.subarray(0, 1024));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await as(owner)('DELETE', `/api/files/${inflight.id}/members/${member.id}`)).statusCode).toBe(
      204,
    );
    body.end(form.payload.subarray(1024));
    const res = await answer;
    expect(res.statusCode, res.body).toBe(404);
    expect(
      (await ok<{ items: Entry[] }>(as(owner)('GET', `/api/files?parentId=${inflight.id}`))).items,
    ).toEqual([]);
  });

  it('takes a revoked share away on the next request', async () => {
    const { items } = await ok<{ items: Array<{ id: string; username?: string }> }>(
      as(owner)('GET', `/api/files/${team.id}/members`),
    );
    const edMember = items.find((m) => m.username === 'edith')!;
    expect((await as(ed)('GET', `/api/files/${note.id}/content`)).statusCode).toBe(200);
    expect((await as(owner)('DELETE', `/api/files/${team.id}/members/${edMember.id}`)).statusCode).toBe(204);
    const after = [
      await as(ed)('GET', `/api/files/${note.id}/content`),
      await as(ed)('GET', `/api/files?parentId=${team.id}`),
      await postForm(t, ed.headers, 'late.bin', random(10), team.id),
    ];
    expect(after.map((r) => r.statusCode)).toEqual([404, 404, 404]);
    expect((await ok<{ items: unknown[] }>(as(ed)('GET', '/api/shared-with-me'))).items).toEqual([]);
    expect((await as(owner)('DELETE', `/api/files/${team.id}/members/${edMember.id}`)).statusCode).toBe(404);
  });

  /** A folder of the user's own (made once). */
  const ownFolders = new Map<string, Entry>();
  async function ownFolder(user: User): Promise<Entry> {
    const known = ownFolders.get(user.id);
    if (known) return known;
    const made = (await ok<{ file: Entry }>(as(user)('POST', '/api/folders', { name: 'Own' }), 201)).file;
    ownFolders.set(user.id, made);
    return made;
  }
});
