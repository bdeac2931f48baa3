import { fileURLToPath } from 'node:url';
import { type SshdHandle, startSshd } from '@dfs/cluster/sshd';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectKey } from '../../src/storage/types.ts';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { chunksOf, random, sha1 } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

/** The upload contract again, with the bytes landing on a real OpenSSH server. */
describe('uploads onto an SFTP node', () => {
  let sshd: SshdHandle;
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let bob: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    sshd = await startSshd();
    t = await startTestApp({ DFS_NODES: sshd.url('password'), DFS_CHUNK_SIZE: String(CHUNK) });
    alice = await t.user('alice');
    bob = await t.user('bob');
  });
  afterAll(async () => {
    await t?.close();
    await sshd?.stop();
  });

  it('stores verified bytes on the node, downloads them, and gives a second user an instant upload', async () => {
    const data = random(CHUNK * 5 + 4321);
    const file = await uploader(t, alice.headers).upload(data, 'remote.bin');
    expect(file.sha1).toBe(sha1(data));
    const [node] = t.app.services.cluster.liveNodeIds();
    const stat = await t.app.services.cluster.driver(node as string)?.stat(objectKey(file.sha1));
    expect(stat).toEqual({ size: data.length });

    const body = await t.app.inject({ url: `/api/files/${file.id}/content`, headers: alice.headers });
    expect(body.rawPayload.equals(data)).toBe(true);
    const ranged = await t.app.inject({
      url: `/api/files/${file.id}/content`,
      headers: { ...alice.headers, range: `bytes=${CHUNK - 3}-${CHUNK + 3}` },
    });
    expect(ranged.rawPayload.equals(data.subarray(CHUNK - 3, CHUNK + 4))).toBe(true);

    const instant = await uploader(t, bob.headers).upload(data, 'mine.bin');
    expect(instant.instant).toBe(true);
  });

  it('publishes nothing for a liar, even over an existing object', async () => {
    const real = random(CHUNK + 10);
    const stored = await uploader(t, alice.headers).upload(real, 'real.bin');
    // Bob claims the stored hash with other bytes and a different size: no dedupe, a new upload.
    const fake = random(CHUNK + 11);
    const up = uploader(t, bob.headers);
    const { uploadId } = (await up.create({ name: 'fake.bin', size: fake.length, sha1: stored.sha1 })).json();
    for (const [i, c] of chunksOf(fake, CHUNK).entries()) await up.put(uploadId, i, c);
    const res = await up.complete(uploadId);
    expect(res.statusCode).toBe(422);
    expect(errorCode(res)).toBe('hash_mismatch');
    const body = await t.app.inject({ url: `/api/files/${stored.id}/content`, headers: alice.headers });
    expect(body.rawPayload.equals(real)).toBe(true);
  });

  it('fails cleanly while the only node is down, then completes once it is back', async () => {
    const data = random(CHUNK * 2);
    const up = uploader(t, alice.headers);
    const { uploadId } = (await up.create({ name: 'later.bin', size: data.length, sha1: sha1(data) })).json();
    for (const [i, c] of chunksOf(data, CHUNK).entries()) await up.put(uploadId, i, c);
    await sshd.kill();
    await t.app.services.cluster.heartbeat();
    await t.app.services.cluster.heartbeat();
    const failed = await up.complete(uploadId);
    expect(failed.statusCode).toBe(503);
    expect(errorCode(failed)).toBe('storage_unavailable');
    expect(await t.app.services.repos.contents.findBySha1(sha1(data))).toBeUndefined();
    expect((await t.app.inject({ url: '/readyz' })).statusCode).toBe(503);

    await sshd.restart();
    await t.app.services.cluster.heartbeat();
    expect((await up.get(uploadId)).json().receivedChunks).toEqual([0, 1]);
    const done = await up.complete(uploadId);
    expect(done.statusCode).toBe(201);
    expect(done.json().file.sha1).toBe(sha1(data));
  });
});

/** A node that cannot fsync is refused (the nodes page says why), or accepted and shown as such. */
describe('an SFTP node without fsync@openssh.com', () => {
  let sshd: SshdHandle;
  let t: TestApp;
  let admin: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    const wrapper = fileURLToPath(new URL('../support/sftp-without-fsync.mjs', import.meta.url));
    sshd = await startSshd({ sftpSubsystem: `${process.execPath} ${wrapper}` });
    t = await startTestApp({
      DFS_NODES: `${sshd.url('password', `${sshd.root}/refused`)},${sshd.url('password', `${sshd.root}/accepted`)}?fsync=0`,
      DFS_CHUNK_SIZE: String(CHUNK),
      DFS_REPLICAS: '2',
    });
    admin = await t.user('admin');
  });
  afterAll(async () => {
    await t?.close();
    await sshd?.stop();
  });

  it('keeps it down with the reason in GET /api/nodes unless its URL says fsync=0', async () => {
    const nodes = (await t.app.inject({ url: '/api/nodes', headers: admin.headers })).json().items as {
      name: string;
      status: string;
      syncsWrites: boolean;
      problem: string | null;
    }[];
    const refused = nodes.find((n) => n.name.endsWith('/refused'));
    const accepted = nodes.find((n) => n.name.endsWith('/accepted'));
    expect(refused).toMatchObject({ status: 'down', syncsWrites: false });
    expect(refused?.problem).toMatch(/fsync@openssh\.com.*fsync=0/);
    expect(accepted).toMatchObject({ status: 'up', syncsWrites: false, problem: null });
    // Uploads go to the accepted node only.
    const file = await uploader(t, admin.headers).upload(random(CHUNK + 5), 'x.bin');
    expect(file.sha1).toBeDefined();
  });
});
