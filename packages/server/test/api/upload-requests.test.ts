import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPLOAD_REQUEST_RATE_LIMIT } from '../../src/routes/shares.ts';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { chunkChecksum, random } from '../support/bytes.ts';
import { CHUNK, multipartForm, uploader } from '../support/uploads.ts';

type Headers = Record<string, string>;

const MiB = 1024 * 1024;

/**
 * A form whose file part is `total` bytes, produced as the server pulls them; counts what it
 * pulled, and calls `onPulled` as it goes (to move a clock mid-body).
 */
function streamedForm(total: number, onPulled: (pulled: number) => void = () => {}) {
  const form = multipartForm('huge.bin', Buffer.alloc(0));
  const tail = Buffer.from('\r\n------dfs-test-boundary--\r\n');
  const head = form.payload.subarray(0, form.payload.length - tail.length);
  const block = random(MiB);
  const state = { pulled: 0 };
  let started = false;
  const stream = new Readable({
    read() {
      if (!started) {
        started = true;
        this.push(head);
      }
      if (state.pulled >= total) {
        this.push(tail);
        this.push(null);
        return;
      }
      const piece = block.subarray(0, Math.min(MiB, total - state.pulled));
      state.pulled += piece.length;
      onPulled(state.pulled);
      this.push(piece);
    },
  });
  return { stream, state, headers: form.headers };
}

describe('upload requests', () => {
  let t: TestApp;
  let clock = Date.now();
  let alice: Awaited<ReturnType<TestApp['user']>>;

  const api = (method: string, url: string, payload?: object, headers: Headers = alice.headers) =>
    t.app.inject({ method: method as 'GET', url, headers, ...(payload ? { payload } : {}) });
  const folder = async (name: string) =>
    (await api('POST', '/api/folders', { name })).json().file.id as string;
  const request = async (folderId: string, body: object = {}) => {
    const res = await api('POST', `/api/files/${folderId}/shares`, { kind: 'upload', ...body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().share as { token: string; url: string; kind: string; fileId: string };
  };
  /** An anonymous upload through the link: the `name` field first, as the drop page sends it. */
  const drop = (token: string, name: string, data: Buffer, fields: Headers = {}, headers: Headers = {}) => {
    const form = multipartForm(name, data, undefined, fields);
    return t.app.inject({
      method: 'POST',
      url: `/api/public/shares/${token}/files`,
      payload: form.payload,
      headers: { ...form.headers, ...headers },
    });
  };
  const listing = async (folderId: string) =>
    (
      (await api('GET', `/api/files?parentId=${folderId}`)).json().items as Array<{
        name: string;
        size: number;
      }>
    )
      .map((f) => `${f.name}:${f.size}`)
      .sort();
  const usage = async () => (await api('GET', '/api/auth/me')).json().usage.usedBytes as number;
  const pub = (token: string, suffix = '', method = 'GET') =>
    t.app.inject({ method: method as 'GET', url: `/api/public/shares/${token}${suffix}` });
  const received = async (token: string) =>
    ((await api('GET', '/api/shares')).json().items as Array<{ token: string; bytesReceived: number }>).find(
      (s) => s.token === token,
    )?.bytesReceived;

  beforeAll(async () => {
    t = await startTestApp(
      { DFS_CHUNK_SIZE: String(CHUNK), DFS_PUBLIC_URL: 'https://drive.example' },
      { now: () => clock },
    );
    alice = await t.user('alice');
  });
  afterAll(() => t.close());

  it('is made on a folder; a file, or a download link on a folder, answers 400 and makes nothing', async () => {
    const inbox = await folder('Inbox');
    const s = await request(inbox, { maxBytes: 5000 });
    expect(s).toMatchObject({ kind: 'upload', fileId: inbox, url: `https://drive.example/drop/${s.token}` });
    expect(s).toMatchObject({ name: 'Inbox', maxBytes: 5000, bytesReceived: 0, hasPassword: false });
    const file = await uploader(t, alice.headers).upload(random(10), 'plain.txt');
    const bad = [
      [file.id, { kind: 'upload' }],
      [inbox, {}],
      [inbox, { kind: 'upload', maxDownloads: 3 }],
      [file.id, { maxBytes: 10 }],
      [inbox, { kind: 'upload', maxBytes: 0 }],
      [inbox, { kind: 'upload', expiresAt: new Date(clock - 1000).toISOString() }],
      [inbox, { kind: 'upload', expiresAt: 'tomorrow' }],
      [inbox, { kind: 'upload', expiresAt: new Date(clock + 60_000).toISOString(), expiresInSeconds: 60 }],
      [inbox, { kind: 'nope' }],
    ] as const;
    for (const [id, body] of bad) {
      const res = await api('POST', `/api/files/${id}/shares`, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error.message).toBeTruthy();
    }
    const mine = (await api('GET', '/api/shares')).json().items as Array<{ token: string }>;
    expect(mine.map((x) => x.token)).toEqual([s.token]);
  });

  it('takes anonymous uploads into the folder, charged to the owner; a taken name gets (1)', async () => {
    const inbox = await folder('Drop box');
    const s = await request(inbox);
    const before = await usage();
    const a = random(3000);
    const b = random(CHUNK * 2 + 5); // more than a chunk: streams to the nodes as it arrives
    const first = await drop(s.token, 'report.pdf', a, { name: 'Dana' });
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json()).toEqual({ name: 'report.pdf', size: a.length });
    const second = await drop(s.token, 'report.pdf', b);
    expect(second.statusCode, second.body).toBe(201);
    expect(second.json()).toEqual({ name: 'report (1).pdf', size: b.length });
    expect(await listing(inbox)).toEqual([`report (1).pdf:${b.length}`, `report.pdf:${a.length}`]);
    expect(await usage()).toBe(before + a.length + b.length);
    expect(await received(s.token)).toBe(a.length + b.length);
    const items = (await api('GET', `/api/files?parentId=${inbox}`)).json().items as Array<{
      id: string;
      name: string;
    }>;
    const got = await api('GET', `/api/files/${items.find((f) => f.name === 'report.pdf')!.id}/content`);
    expect(got.rawPayload.equals(a)).toBe(true);
  });

  it('names the uploader in the owner’s history, anonymous when no name was typed', async () => {
    const inbox = await folder('Named');
    const s = await request(inbox);
    expect((await drop(s.token, 'one.txt', random(10), { name: '  Dana Scully ' })).statusCode).toBe(201);
    expect((await drop(s.token, 'two.txt', random(10))).statusCode).toBe(201);
    const events = (await api('GET', `/api/history?folderId=${inbox}`)).json().items as Array<{
      action: string;
      path: string;
      actor: { type: string; name: string };
    }>;
    // The folder's own creation (by the owner's session) is in its history too.
    const created = events
      .filter((e) => e.action === 'created' && e.path !== '/Named')
      .map((e) => [e.path, e.actor.type, e.actor.name]);
    expect(created.sort()).toEqual([
      ['/Named/one.txt', 'share', 'Dana Scully'],
      ['/Named/two.txt', 'share', 'anonymous'],
    ]);
  });

  it('refuses an uploader name it could not show as typed, keeping nothing', async () => {
    const inbox = await folder('Names');
    const s = await request(inbox);
    for (const name of ['x'.repeat(101), 'a\u0007b']) {
      const res = await drop(s.token, 'x.txt', random(10), { name });
      expect(res.statusCode).toBe(400);
      expect(errorCode(res)).toBe('bad_request');
    }
    expect(await listing(inbox)).toEqual([]);
  });

  it('shows the visitor only what the drop page needs, and never lists or serves the folder', async () => {
    const inbox = await folder('Private stuff');
    await api('POST', '/api/folders', { name: 'secret-sub', parentId: inbox });
    const s = await request(inbox, { maxBytes: 1000 });
    expect((await drop(s.token, 'in.txt', random(300))).statusCode).toBe(201);
    const info = await pub(s.token);
    expect(info.statusCode).toBe(200);
    expect(info.json()).toEqual({
      kind: 'upload',
      name: 'Private stuff',
      expiresAt: null,
      hasPassword: false,
      maxBytes: 1000,
      bytesLeft: 700,
    });
    for (const [suffix, method] of [
      ['/content', 'GET'],
      ['/content', 'HEAD'],
      ['/grants', 'POST'],
    ] as const) {
      const res = await pub(s.token, suffix, method);
      expect(res.statusCode, `${method} ${suffix}`).toBe(404);
      // As for a link that does not exist: nothing says there is a folder behind it.
      if (method !== 'HEAD') expect(res.json().error.reason).toBe('unknown');
    }
    // The token is no session: the folder's own routes stay closed to it.
    const asBearer = await api('GET', `/api/files?parentId=${inbox}`, undefined, {
      authorization: `Bearer ${s.token}`,
    });
    expect(asBearer.statusCode).toBe(401);
  });

  it('asks for the password in a header and adds nothing without the right one', async () => {
    const inbox = await folder('Locked');
    const s = await request(inbox, { password: 'open sesame' });
    expect((await pub(s.token)).json().hasPassword).toBe(true);
    const none = await drop(s.token, 'a.txt', random(100));
    expect(none.statusCode).toBe(401);
    expect(errorCode(none)).toBe('share_password_required');
    const wrong = await drop(s.token, 'a.txt', random(100), {}, { 'x-share-password': 'guess' });
    expect(wrong.statusCode).toBe(403);
    expect(errorCode(wrong)).toBe('share_password_invalid');
    expect(await listing(inbox)).toEqual([]);
    const right = await drop(s.token, 'a.txt', random(100), {}, { 'x-share-password': 'open sesame' });
    expect(right.statusCode).toBe(201);
    expect(await listing(inbox)).toEqual(['a.txt:100']);
  });

  it('refuses uploads once the link has expired (410)', async () => {
    const inbox = await folder('Soon gone');
    const s = await request(inbox, { expiresAt: new Date(clock + 60_000).toISOString() });
    expect((await pub(s.token)).json().expiresAt).toBe(new Date(clock + 60_000).toISOString());
    expect((await drop(s.token, 'early.txt', random(10))).statusCode).toBe(201);
    clock += 61_000;
    const late = await drop(s.token, 'late.txt', random(10));
    expect(late.statusCode).toBe(410);
    expect(errorCode(late)).toBe('share_expired');
    expect(late.json().error.reason).toBe('expired');
    expect((await pub(s.token)).statusCode).toBe(410);
    expect(await listing(inbox)).toEqual(['early.txt:10']);
  });

  it('stops at the byte limit while streaming (413) and keeps nothing of a refused file', async () => {
    const inbox = await folder('Limited');
    const limit = CHUNK + 1000;
    const s = await request(inbox, { maxBytes: limit });
    const before = await usage();
    expect((await drop(s.token, 'fits.bin', random(1000))).statusCode).toBe(201);
    // Bigger than what is left, and than a chunk: refused while it streams, its part discarded.
    const big = await drop(s.token, 'big.bin', random(CHUNK * 3));
    expect(big.statusCode).toBe(413);
    expect(errorCode(big)).toBe('payload_too_large');
    expect(big.json().error).toMatchObject({ reason: 'limit_reached', bytesLeft: CHUNK });
    const small = await drop(s.token, 'small.bin', random(CHUNK + 1));
    expect(small.statusCode).toBe(413);
    expect(await listing(inbox)).toEqual(['fits.bin:1000']);
    expect(await usage()).toBe(before + 1000);
    expect(await received(s.token)).toBe(1000);
    // Exactly what is left still fits; then nothing more does.
    expect((await drop(s.token, 'rest.bin', random(CHUNK))).statusCode).toBe(201);
    expect((await pub(s.token)).json().bytesLeft).toBe(0);
    const after = await drop(s.token, 'one-more.bin', random(1));
    expect(after.statusCode).toBe(413);
    expect(after.json().error.reason).toBe('limit_reached');
    expect(await listing(inbox)).toEqual(['fits.bin:1000', `rest.bin:${CHUNK}`]);
  });

  it('stops reading a body at the byte limit, not at its end', async () => {
    const inbox = await folder('Streamed');
    const s = await request(inbox, { maxBytes: MiB });
    const before = await usage();
    const body = streamedForm(40 * MiB);
    const res = await t.app.inject({
      method: 'POST',
      url: `/api/public/shares/${s.token}/files`,
      headers: body.headers,
      payload: body.stream,
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.reason).toBe('limit_reached');
    expect(body.state.pulled).toBeLessThan(MiB + 8 * MiB);
    expect(await listing(inbox)).toEqual([]);
    expect(await usage()).toBe(before);
  });

  it('stops a body when the link expires while it streams (410), keeping nothing', async () => {
    const inbox = await folder('Expiring');
    const s = await request(inbox, { expiresAt: new Date(clock + 60_000).toISOString() });
    // Well after the body started: the link was live when the upload began.
    const body = streamedForm(40 * MiB, (pulled) => {
      if (pulled === 8 * MiB) clock += 120_000;
    });
    const res = await t.app.inject({
      method: 'POST',
      url: `/api/public/shares/${s.token}/files`,
      headers: body.headers,
      payload: body.stream,
    });
    expect(res.statusCode).toBe(410);
    expect(res.json().error.reason).toBe('expired');
    expect(body.state.pulled).toBeLessThan(16 * MiB);
    expect(await listing(inbox)).toEqual([]);
  });

  it('two racing uploads cannot together pass the limit', async () => {
    const inbox = await folder('Race');
    const s = await request(inbox, { maxBytes: 1500 });
    const [a, b] = await Promise.all([
      drop(s.token, 'a.bin', random(1000)),
      drop(s.token, 'b.bin', random(1000)),
    ]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([201, 413]);
    expect(await received(s.token)).toBe(1000);
    expect((await listing(inbox)).length).toBe(1);
  });

  it('stops working when revoked or when its folder goes to the trash (404)', async () => {
    const inbox = await folder('Revoked');
    const s = await request(inbox);
    const gone = await folder('Trashed');
    const g = await request(gone);
    expect((await api('DELETE', `/api/files/${gone}`)).statusCode).toBe(204);
    const trashed = await drop(g.token, 'x.txt', random(10));
    expect(trashed.statusCode).toBe(404);
    expect(trashed.json().error.reason).toBe('folder_gone');

    expect((await api('DELETE', `/api/shares/${s.token}`)).statusCode).toBe(204);
    const res = await drop(s.token, 'x.txt', random(10));
    expect(res.statusCode).toBe(404);
    expect((await pub(s.token)).json().error.reason).toBe('revoked');
    expect(await listing(inbox)).toEqual([]);
    const unknown = await drop('no-such-token-here', 'x.txt', random(10));
    expect(unknown.statusCode).toBe(404);
  });

  it('answers a body that is not a form with 415, and a form without a file with 400', async () => {
    const s = await request(await folder('Forms'));
    const json = await t.app.inject({
      method: 'POST',
      url: `/api/public/shares/${s.token}/files`,
      payload: { file: 'x' },
    });
    expect(json.statusCode).toBe(415);
    const form = multipartForm('x.txt', Buffer.from('x'));
    const noFile = await t.app.inject({
      method: 'POST',
      url: `/api/public/shares/${s.token}/files`,
      headers: form.headers,
      payload: form.payload.toString('latin1').replace('name="file"', 'name="other"'),
    });
    expect(noFile.statusCode).toBe(400);
  });
});

describe('upload requests and the owner’s quota', () => {
  it('a file over the owner’s quota is refused (413) and not counted on the link', async () => {
    const t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK), DFS_DEFAULT_QUOTA_BYTES: '5000' });
    try {
      const u = await t.user('quota-owner');
      const inbox = (
        await t.app.inject({
          method: 'POST',
          url: '/api/folders',
          headers: u.headers,
          payload: { name: 'In' },
        })
      ).json().file.id as string;
      const s = (
        await t.app.inject({
          method: 'POST',
          url: `/api/files/${inbox}/shares`,
          headers: u.headers,
          payload: { kind: 'upload' },
        })
      ).json().share as { token: string };
      const post = (bytes: number) => {
        const form = multipartForm('f.bin', random(bytes));
        return t.app.inject({
          method: 'POST',
          url: `/api/public/shares/${s.token}/files`,
          payload: form.payload,
          headers: form.headers,
        });
      };
      expect((await post(4000)).statusCode).toBe(201);
      const over = await post(2000);
      expect(over.statusCode).toBe(413);
      expect(errorCode(over)).toBe('quota_exceeded');
      const shares = (await t.app.inject({ url: '/api/shares', headers: u.headers })).json().items;
      expect(shares[0].bytesReceived).toBe(4000);
    } finally {
      await t.close();
    }
  });
});

describe('upload requests are rate-limited per address', () => {
  it('answers 429 past the limit of a minute', async () => {
    const t = await startTestApp();
    try {
      const codes = new Set<number>();
      for (let i = 0; i < UPLOAD_REQUEST_RATE_LIMIT; i++) {
        codes.add((await t.app.inject({ method: 'POST', url: '/api/public/shares/nope/files' })).statusCode);
      }
      expect(codes.has(429)).toBe(false);
      const over = await t.app.inject({ method: 'POST', url: '/api/public/shares/nope/files' });
      expect(over.statusCode).toBe(429);
      expect(errorCode(over)).toBe('rate_limited');
      // Another address is not held back.
      const other = await t.app.inject({
        method: 'POST',
        url: '/api/public/shares/nope/files',
        remoteAddress: '10.1.2.3',
      });
      expect(other.statusCode).not.toBe(429);
    } finally {
      await t.close();
    }
  });
});

describe('resumable uploads through an upload request', () => {
  const BIG_CHUNK = 8 * MiB;
  /** DFS_SHARE_PASSWORD_RATE_LIMIT's default: guesses per link, address and minute. */
  const SHARE_PASSWORD_GUESSES = 20;
  const SESSIONS_PER_MINUTE = 6;
  const CHUNKS_PER_MINUTE = 30;
  const OPEN_PER_LINK = 8;
  let t: TestApp;
  let clock = Date.now();
  let owner: Awaited<ReturnType<TestApp['user']>>;
  let addresses = 0;

  const api = (method: string, url: string, payload?: object, headers: Headers = owner.headers) =>
    t.app.inject({ method: method as 'GET', url, headers, ...(payload ? { payload } : {}) });
  const folder = async (name: string) =>
    (await api('POST', '/api/folders', { name })).json().file.id as string;
  const link = async (folderId: string, body: object = {}) => {
    const res = await api('POST', `/api/files/${folderId}/shares`, { kind: 'upload', ...body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().share.token as string;
  };
  const listing = async (folderId: string) =>
    (
      (await api('GET', `/api/files?parentId=${folderId}`)).json().items as Array<{
        name: string;
        size: number;
      }>
    )
      .map((f) => `${f.name}:${f.size}`)
      .sort();
  const bytesLeft = async (token: string) =>
    (await t.app.inject({ url: `/api/public/shares/${token}` })).json().bytesLeft as number | null;

  /** An anonymous visitor of one link, from an address of their own (rate limits are per address). */
  const visitor = (token: string, password?: string) => {
    const remoteAddress = `10.9.0.${++addresses}`;
    const headers: Headers = password === undefined ? {} : { 'x-share-password': password };
    const base = `/api/public/shares/${token}/uploads`;
    return {
      remoteAddress,
      open: (body: object, extra: Headers = {}) =>
        t.app.inject({
          method: 'POST',
          url: base,
          payload: body,
          headers: { ...headers, ...extra },
          remoteAddress,
        }),
      state: (id: string, extra: Headers = {}) =>
        t.app.inject({
          method: 'GET',
          url: `${base}/${id}`,
          headers: { ...headers, ...extra },
          remoteAddress,
        }),
      chunk: (id: string, index: number, data: Buffer, extra: Headers = {}) =>
        t.app.inject({
          method: 'PUT',
          url: `${base}/${id}/chunks/${index}`,
          payload: data,
          headers: {
            'content-type': 'application/octet-stream',
            ...chunkChecksum(data, extra),
            ...headers,
            ...extra,
          },
          remoteAddress,
        }),
      complete: (id: string, body: object = {}, extra: Headers = {}) =>
        t.app.inject({
          method: 'POST',
          url: `${base}/${id}/complete`,
          payload: body,
          headers: { ...headers, ...extra },
          remoteAddress,
        }),
      abort: (id: string, extra: Headers = {}) =>
        t.app.inject({
          method: 'DELETE',
          url: `${base}/${id}`,
          headers: { ...headers, ...extra },
          remoteAddress,
        }),
    };
  };
  const sha1 = (data: Buffer) => createHash('sha1').update(data).digest('hex');

  beforeAll(async () => {
    t = await startTestApp(
      {
        DFS_CHUNK_SIZE: String(BIG_CHUNK),
        DFS_DROP_RATE_LIMIT: String(SESSIONS_PER_MINUTE),
        DFS_DROP_RATE_LIMIT_BYTES: String(CHUNKS_PER_MINUTE * BIG_CHUNK),
        DFS_MAX_UPLOADS_PER_USER: String(OPEN_PER_LINK),
      },
      { now: () => clock },
    );
    owner = await t.user('dropper');
  });
  afterAll(() => t.close());

  // The bytes' path does not depend on the database: the 200 MB run is SQLite's alone (the
  // session rules around it run on both).
  it.skipIf(process.env.DFS_TEST_DB === 'mysql')(
    'takes a 200 MB file anonymously, resumed after a stop, with its SHA-1 and the uploader in history',
    async () => {
      const inbox = await folder('Big drops');
      const token = await link(inbox);
      const size = 200 * MiB;
      // Every chunk different (its index up front), so a misplaced chunk changes the hash.
      const block = random(BIG_CHUNK);
      const chunkOf = (index: number) => {
        const data = Buffer.from(block.subarray(0, Math.min(BIG_CHUNK, size - index * BIG_CHUNK)));
        data.writeUInt32BE(index, 0);
        return data;
      };
      const count = Math.ceil(size / BIG_CHUNK);
      const whole = createHash('sha1');
      for (let i = 0; i < count; i++) whole.update(chunkOf(i));
      const digest = whole.digest('hex');

      const v = visitor(token);
      const opened = await v.open({ name: 'film.mkv', size, sha1: digest, uploader: 'Fox Mulder' });
      expect(opened.statusCode, opened.body).toBe(201);
      const session = opened.json();
      expect(session).toMatchObject({ status: 'created', size, chunkSize: BIG_CHUNK, chunkCount: count });
      expect(session.receivedChunks).toEqual([]);
      // Some chunks, out of order, then the page is gone (a reload, a lost connection).
      for (const i of [0, 1, 2, 5, 7])
        expect((await v.chunk(session.uploadId, i, chunkOf(i))).statusCode).toBe(204);
      // Completing before every chunk is there is refused; the session stays.
      expect((await v.complete(session.uploadId)).statusCode).toBe(409);

      const again = visitor(token);
      const resumed = await again.state(session.uploadId);
      expect(resumed.statusCode).toBe(200);
      expect(resumed.json().receivedChunks).toEqual([0, 1, 2, 5, 7]);
      const missing = Array.from({ length: count }, (_, i) => i).filter(
        (i) => !resumed.json().receivedChunks.includes(i),
      );
      for (const i of missing) {
        const res = await again.chunk(session.uploadId, i, chunkOf(i));
        expect(res.statusCode, res.body).toBe(204);
      }
      const done = await again.complete(session.uploadId, { sha1: digest });
      expect(done.statusCode, done.body).toBe(201);
      // The link learns the name the file got, and nothing else of the owner's tree.
      expect(done.json()).toEqual({ name: 'film.mkv', size });

      const items = (await api('GET', `/api/files?parentId=${inbox}`)).json().items as Array<{
        name: string;
        size: number;
        sha1: string;
      }>;
      expect(items.map((f) => [f.name, f.size, f.sha1])).toEqual([['film.mkv', size, digest]]);
      const events = (await api('GET', `/api/history?folderId=${inbox}`)).json().items as Array<{
        action: string;
        path: string;
        actor: { type: string; name: string };
      }>;
      expect(
        events
          .filter((e) => e.path === '/Big drops/film.mkv')
          .map((e) => [e.action, e.actor.type, e.actor.name]),
      ).toEqual([['created', 'share', 'Fox Mulder']]);
      expect((await api('GET', '/api/shares')).json().items[0]).toMatchObject({ token, bytesReceived: size });
    },
  );

  it('sends the bytes even for content the server holds, and renames on a taken name', async () => {
    const inbox = await folder('Known');
    const token = await link(inbox);
    const data = random(5000);
    await uploader(t, owner.headers).upload(data, 'mine.bin', inbox);
    const v = visitor(token);
    const opened = await v.open({ name: 'mine.bin', size: data.length, sha1: sha1(data) });
    expect(opened.statusCode).toBe(201);
    // Not "instant", not a challenge: nothing says the content is known.
    expect(opened.json()).toMatchObject({ status: 'created', receivedChunks: [] });
    const id = opened.json().uploadId as string;
    expect((await v.complete(id)).statusCode).toBe(409);
    expect((await v.chunk(id, 0, data)).statusCode).toBe(204);
    // Without a declared SHA-1 the server's own digest names the content.
    const done = await v.complete(id);
    expect(done.statusCode, done.body).toBe(201);
    expect(done.json()).toEqual({ name: 'mine (1).bin', size: data.length });
    expect(await listing(inbox)).toEqual(['mine (1).bin:5000', 'mine.bin:5000']);
  });

  it('asks for the password on every request; a wrong one changes nothing', async () => {
    const inbox = await folder('Locked drops');
    const token = await link(inbox, { password: 'open sesame' });
    const data = random(3000);
    const none = visitor(token);
    const noPassword = await none.open({ name: 'a.bin', size: data.length });
    expect(noPassword.statusCode).toBe(401);
    expect(errorCode(noPassword)).toBe('share_password_required');
    const wrong = visitor(token, 'guess');
    const wrongOpen = await wrong.open({ name: 'a.bin', size: data.length });
    expect(wrongOpen.statusCode).toBe(403);
    expect(errorCode(wrongOpen)).toBe('share_password_invalid');

    const right = visitor(token, 'open sesame');
    const opened = await right.open({ name: 'a.bin', size: data.length });
    expect(opened.statusCode).toBe(201);
    const id = opened.json().uploadId as string;
    const bad = { 'x-share-password': 'guess' };
    for (const res of [
      await right.state(id, bad),
      await right.chunk(id, 0, data, bad),
      await right.complete(id, {}, bad),
      await right.abort(id, bad),
    ]) {
      expect(res.statusCode, res.body).toBe(403);
      expect(errorCode(res)).toBe('share_password_invalid');
    }
    expect((await right.state(id)).json().receivedChunks).toEqual([]);
    expect((await right.chunk(id, 0, data)).statusCode).toBe(204);
    expect((await right.complete(id)).statusCode).toBe(201);
    expect(await listing(inbox)).toEqual(['a.bin:3000']);
  });

  it('counts password guesses on all of a link’s routes against one budget per address', async () => {
    const inbox = await folder('Guessed drops');
    const token = await link(inbox, { password: 'open sesame' });
    const v = visitor(token, 'open sesame');
    const opened = await v.open({ name: 'g.bin', size: 10 });
    expect(opened.statusCode).toBe(201);
    const id = opened.json().uploadId as string;
    const bad = { 'x-share-password': 'guess' };
    const oneRequest = () => {
      const form = multipartForm('g.bin', random(10));
      return t.app.inject({
        method: 'POST',
        url: `/api/public/shares/${token}/files`,
        payload: form.payload,
        headers: { ...form.headers, ...bad },
        remoteAddress: v.remoteAddress,
      });
    };
    // The right password above was one guess; half of the rest on each route: alternating
    // between them must not buy more.
    const codes: number[] = [];
    for (let i = 1; i < SHARE_PASSWORD_GUESSES; i++)
      codes.push((await (i % 2 === 0 ? v.state(id, bad) : oneRequest())).statusCode);
    expect(codes).not.toContain(429);
    const over = await v.state(id, bad);
    expect(over.statusCode).toBe(429);
    expect(errorCode(over)).toBe('rate_limited');
  });

  it('stops an upload when the link expires (410), adding nothing', async () => {
    const inbox = await folder('Expiring drops');
    const token = await link(inbox, { expiresAt: new Date(clock + 60_000).toISOString() });
    const data = random(BIG_CHUNK + 10);
    const v = visitor(token);
    const opened = await v.open({ name: 'late.bin', size: data.length });
    const id = opened.json().uploadId as string;
    expect((await v.chunk(id, 0, data.subarray(0, BIG_CHUNK))).statusCode).toBe(204);
    clock += 61_000;
    for (const res of [
      await v.chunk(id, 1, data.subarray(BIG_CHUNK)),
      await v.complete(id),
      await v.state(id),
      await v.open({ name: 'later.bin', size: 1 }),
    ]) {
      expect(res.statusCode, res.body).toBe(410);
      expect(res.json().error.reason).toBe('expired');
    }
    expect(await listing(inbox)).toEqual([]);
  });

  it('holds the byte limit for open sessions: parallel ones cannot pass it; aborted or expired ones give it back', async () => {
    const inbox = await folder('Limited drops');
    const token = await link(inbox, { maxBytes: 1500 });
    const v = visitor(token);
    const [a, b] = await Promise.all([
      v.open({ name: 'a.bin', size: 1000 }),
      v.open({ name: 'b.bin', size: 1000 }),
    ]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([201, 413]);
    const refused = a.statusCode === 413 ? a : b;
    expect(refused.json().error).toMatchObject({
      code: 'payload_too_large',
      reason: 'limit_reached',
      bytesLeft: 500,
    });
    const held = (a.statusCode === 201 ? a : b).json().uploadId as string;
    expect(await bytesLeft(token)).toBe(500);
    // The one-request path respects what the open session holds.
    const form = multipartForm('c.bin', random(600));
    const single = await t.app.inject({
      method: 'POST',
      url: `/api/public/shares/${token}/files`,
      payload: form.payload,
      headers: form.headers,
    });
    expect(single.statusCode).toBe(413);

    expect((await v.abort(held)).statusCode).toBe(204);
    expect(await bytesLeft(token)).toBe(1500);
    expect((await v.state(held)).statusCode).toBe(404);

    const stale = await v.open({ name: 'stale.bin', size: 1200 });
    expect(stale.statusCode).toBe(201);
    expect(await bytesLeft(token)).toBe(300);
    clock += t.config.uploadExpiryMs + 1000;
    expect(await bytesLeft(token)).toBe(1500);

    const data = random(1000);
    const last = await v.open({ name: 'last.bin', size: data.length });
    const id = last.json().uploadId as string;
    expect((await v.chunk(id, 0, data)).statusCode).toBe(204);
    expect((await v.complete(id)).statusCode).toBe(201);
    expect(await bytesLeft(token)).toBe(500);
    expect((await v.open({ name: 'more.bin', size: 501 })).statusCode).toBe(413);
    expect(await listing(inbox)).toEqual(['last.bin:1000']);
  });

  it('a link revoked mid-upload takes nothing more (404), not even at complete', async () => {
    const inbox = await folder('Revoked drops');
    const token = await link(inbox);
    const data = random(2 * BIG_CHUNK);
    const v = visitor(token);
    const id = (await v.open({ name: 'cut.bin', size: data.length })).json().uploadId as string;
    expect((await v.chunk(id, 0, data.subarray(0, BIG_CHUNK))).statusCode).toBe(204);
    expect((await v.chunk(id, 1, data.subarray(BIG_CHUNK))).statusCode).toBe(204);
    expect((await api('DELETE', `/api/shares/${token}`)).statusCode).toBe(204);
    for (const res of [
      await v.complete(id),
      await v.state(id),
      await v.chunk(id, 1, data.subarray(BIG_CHUNK)),
    ]) {
      expect(res.statusCode).toBe(404);
      expect(res.json().error.reason).toBe('revoked');
    }
    expect(await listing(inbox)).toEqual([]);
    // Its unfinished sessions went with it, bytes and all: the owner does not find them either.
    expect((await api('GET', `/api/uploads/${id}`)).statusCode).toBe(404);
  });

  it('counts a link’s unfinished sessions per link, not against the owner’s own allowance', async () => {
    const token = await link(await folder('Crowded'));
    const [a, b] = [visitor(token), visitor(token)];
    for (let i = 0; i < OPEN_PER_LINK; i++) {
      expect((await (i % 2 ? a : b).open({ name: `s${i}.bin`, size: 1 })).statusCode).toBe(201);
    }
    const more = await a.open({ name: 'more.bin', size: 1 });
    expect(more.statusCode).toBe(429);
    expect(errorCode(more)).toBe('too_many_uploads');
    // The owner's own uploads still start.
    const own = await api('POST', '/api/uploads', { name: 'own.bin', size: 10 });
    expect(own.statusCode, own.body).toBe(201);
    expect((await api('DELETE', `/api/uploads/${own.json().uploadId}`)).statusCode).toBe(204);
  });

  it('only the link that opened a session may touch it; nothing lists the sessions or the folder', async () => {
    const inbox = await folder('Mine only');
    const token = await link(inbox);
    const other = await link(await folder('Elsewhere'));
    const data = random(100);
    const v = visitor(token);
    const id = (await v.open({ name: 'x.bin', size: data.length })).json().uploadId as string;
    for (const intruder of [visitor(other), visitor('no-such-token-here')]) {
      for (const res of [
        await intruder.state(id),
        await intruder.chunk(id, 0, data),
        await intruder.complete(id),
        await intruder.abort(id),
      ]) {
        expect(res.statusCode, res.body).toBe(404);
      }
    }
    // An account other than the owner does not reach it through the signed-in routes either.
    const bob = await t.user('bob-dropper');
    expect((await api('GET', `/api/uploads/${id}`, undefined, bob.headers)).statusCode).toBe(404);
    expect((await v.state(id)).json().receivedChunks).toEqual([]);
    for (const url of [`/api/public/shares/${token}/uploads`, `/api/public/shares/${token}/content`]) {
      expect((await t.app.inject({ url, remoteAddress: v.remoteAddress })).statusCode).toBe(404);
    }
    expect((await v.chunk(id, 0, data)).statusCode).toBe(204);
    expect((await v.complete(id)).statusCode).toBe(201);
    expect(await listing(inbox)).toEqual(['x.bin:100']);
  });

  it('a link’s session is not the owner’s to resume, complete or abort through their own routes', async () => {
    const inbox = await folder('Not a back door');
    const token = await link(inbox, { maxBytes: 150 });
    const data = random(100);
    const v = visitor(token);
    const opened = await v.open({ name: 'theirs.bin', size: data.length, sha1: sha1(data) });
    const id = opened.json().uploadId as string;
    expect((await v.chunk(id, 0, data)).statusCode).toBe(204);
    // The owner's own upload of the same bytes is a session of its own, into their own folder.
    const own = await api('POST', '/api/uploads', { name: 'own.bin', size: data.length, sha1: sha1(data) });
    expect(own.statusCode, own.body).toBe(201);
    expect(own.json().uploadId).not.toBe(id);
    expect((await api('DELETE', `/api/uploads/${own.json().uploadId}`)).statusCode).toBe(204);
    // Completed there, the file would skip the link's byte count (and its limit).
    for (const res of [
      await api('GET', `/api/uploads/${id}`),
      await api('POST', `/api/uploads/${id}/complete`, {}),
      await api('DELETE', `/api/uploads/${id}`),
    ]) {
      expect(res.statusCode, res.body).toBe(404);
    }
    expect(await listing(inbox)).toEqual([]);
    expect((await v.complete(id)).statusCode).toBe(201);
    expect(await listing(inbox)).toEqual(['theirs.bin:100']);
    expect(await bytesLeft(token)).toBe(50);
  });

  it('limits sessions and bytes per address and minute (429 with Retry-After)', async () => {
    const token = await link(await folder('Busy'));
    const v = visitor(token);
    for (let i = 0; i < SESSIONS_PER_MINUTE; i++) {
      expect((await v.open({ name: `f${i}.bin`, size: 1 })).statusCode).toBe(201);
    }
    const over = await v.open({ name: 'over.bin', size: 1 });
    expect(over.statusCode).toBe(429);
    expect(errorCode(over)).toBe('rate_limited');
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    // Another address is not held back.
    expect((await visitor(token).open({ name: 'other.bin', size: 1 })).statusCode).toBe(201);

    // Bytes are counted in chunks (whatever their answer), per address.
    const w = visitor(token);
    const tiny = Buffer.alloc(1);
    for (let i = 0; i < CHUNKS_PER_MINUTE; i++) {
      expect((await w.chunk('no-such-upload', 0, tiny)).statusCode).toBe(404);
    }
    const tooMuch = await w.chunk('no-such-upload', 0, tiny);
    expect(tooMuch.statusCode).toBe(429);
    expect(errorCode(tooMuch)).toBe('rate_limited');
    expect(Number(tooMuch.headers['retry-after'])).toBeGreaterThan(0);
  });
});
