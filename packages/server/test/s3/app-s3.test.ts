import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { type SshdHandle, startSshd } from '@dfs/cluster/sshd';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import yauzl from 'yauzl';
import { type AppInstance, buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { sweep } from '../../src/jobs/maintenance.ts';
import { repair, repairContents } from '../../src/jobs/repair.ts';
import { scrub } from '../../src/jobs/scrub.ts';
import { objectKey } from '../../src/storage/types.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { chunkChecksum, chunksOf, md5Base64, random, sha1 } from '../support/bytes.ts';
import { rgw } from '../support/s3.ts';
import { uploader } from '../support/uploads.ts';

const s3 = rgw();
const MiB = 1024 * 1024;
const CHUNK = 5 * MiB;

async function s3Sha1(bucket: string, key: string): Promise<string | null> {
  try {
    const out = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return sha1(
      Buffer.from(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()),
    );
  } catch {
    return null;
  }
}

/** The first heartbeat creates the bucket, which takes a fresh RGW a few seconds (pools). */
async function allNodesUp(t: TestApp): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!t.app.services.cluster.liveNodeIds().length || t.app.services.cluster.liveNodeIds().length < 2) {
    if (Date.now() > deadline) throw new Error('the storage nodes did not come up');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Follows a 302 from the app the way a browser or download manager would. */
async function followRedirect(location: string, headers: Record<string, string> = {}) {
  const res = await fetch(location, { headers });
  return { res, body: Buffer.from(await res.arrayBuffer()) };
}

describe('an app with an SFTP node and an S3 (Ceph RGW) node, two replicas', () => {
  let sshd: SshdHandle;
  let t: TestApp;
  let admin: Awaited<ReturnType<TestApp['user']>>;
  const bucket = s3.bucket('mixed');

  beforeAll(async () => {
    sshd = await startSshd();
    t = await startTestApp({
      DFS_NODES: [sshd.url('password'), s3.nodeUrl(bucket)].join(','),
      DFS_REPLICAS: '2',
      DFS_CHUNK_SIZE: String(CHUNK),
      DFS_MAX_FILE_SIZE: String(1024 * MiB),
      DFS_HEARTBEAT_SECONDS: '0.3',
      // Every replica is due for a scrub at once, read at full speed.
      DFS_SCRUB_PERIOD_DAYS: '0',
      DFS_SCRUB_BYTES_PER_SECOND: String(1024 * MiB),
    });
    admin = await t.user('admin');
    await allNodesUp(t);
  });
  afterAll(async () => {
    await t?.close();
    await sshd?.stop();
  });

  const s3NodeId = async () => (await t.app.services.repos.nodes.list()).find((n) => n.kind === 's3')!.id;

  it('sends each chunk to the bucket as a multipart part; complete publishes it; no part is left', async () => {
    const up = uploader(t, admin.headers);
    const data = random(2 * CHUNK + 12_345);
    const created = await up.create({ name: 'video.bin', size: data.length, sha1: sha1(data) });
    expect(created.statusCode).toBe(201);
    const { uploadId } = created.json();
    const chunks = chunksOf(data, CHUNK);
    // Out of order: the last chunk first.
    expect((await up.put(uploadId, 2, chunks[2]!)).statusCode).toBe(204);
    expect(await s3.multipartUploads(bucket)).toEqual([`.dfs-parts/${uploadId}`]);
    await Promise.all(
      [0, 1].map(async (i) => expect((await up.put(uploadId, i, chunks[i]!)).statusCode).toBe(204)),
    );
    const done = await up.complete(uploadId);
    expect(done.statusCode).toBe(201);
    const hash = sha1(data);
    expect(await s3Sha1(bucket, objectKey(hash))).toBe(hash);
    expect(await s3.multipartUploads(bucket)).toEqual([]);
    expect(await s3.keys(bucket, '.dfs-parts/')).toEqual([]);
    const replicas = await t.app.services.repos.contents.replicasOf(
      (await t.app.services.repos.contents.findBySha1(hash))!.id,
    );
    expect(replicas.map((r) => r.node_id)).toContain(await s3NodeId());
    expect(replicas).toHaveLength(2);
  });

  it('with an SFTP node among the targets the app checks a Content-MD5 itself: 400, nothing written', async () => {
    const { cluster } = t.app.services;
    expect(
      cluster
        .liveNodeIds()
        .map((id) => cluster.driver(id)?.capabilities().checksMd5)
        .sort(),
    ).toEqual([false, true]);
    const up = uploader(t, admin.headers);
    const data = random(CHUNK + 10);
    const { uploadId } = (
      await up.create({ name: 'md5-mixed.bin', size: data.length, sha1: sha1(data) })
    ).json();
    const bad = await up.put(uploadId, 0, data.subarray(0, CHUNK), { 'content-md5': md5Base64(random(16)) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('checksum_mismatch');
    // Refused before any node saw it: no multipart upload was even opened, and both nodes stay.
    expect(await s3.multipartUploads(bucket, `.dfs-parts/${uploadId}`)).toEqual([]);
    expect(cluster.liveNodeIds()).toHaveLength(2);
    expect((await up.abort(uploadId)).statusCode).toBe(204);
  });

  it('an aborted upload aborts its multipart upload; the sweeper removes orphans', async () => {
    const up = uploader(t, admin.headers);
    const data = random(CHUNK + 10);
    const { uploadId } = (await up.create({ name: 'gone.bin', size: data.length, sha1: sha1(data) })).json();
    expect((await up.put(uploadId, 0, data.subarray(0, CHUNK))).statusCode).toBe(204);
    expect(await s3.multipartUploads(bucket)).toHaveLength(1);
    expect((await up.abort(uploadId)).statusCode).toBe(204);
    expect(await s3.multipartUploads(bucket)).toEqual([]);

    // An upload left to expire: the sweeper deletes its row and aborts its multipart upload.
    const left = (await up.create({ name: 'left.bin', size: data.length, sha1: sha1(random(8)) })).json();
    expect((await up.put(left.uploadId, 0, data.subarray(0, CHUNK))).statusCode).toBe(204);
    expect(await s3.multipartUploads(bucket)).toEqual([`.dfs-parts/${left.uploadId}`]);
    const later = Date.now() + t.config.uploadExpiryMs + 60_000;
    expect(later - Date.now()).toBeLessThan(t.config.sessionTtlMs);
    expect((await sweep({ ...t.app.services.clusterJobs.deps, now: () => later } as never)).uploads).toBe(1);
    expect(await s3.multipartUploads(bucket)).toEqual([]);
  });

  it('downloads redirect to a presigned URL with the same name, type and Range; a lost object fails over', async () => {
    const data = random(300_000);
    const file = await uploader(t, admin.headers).upload(data, '报告 final.pdf');
    const res = await t.app.inject({ url: `/api/files/${file.id}/content`, headers: admin.headers });
    expect(res.statusCode).toBe(302);
    const location = res.headers.location as string;
    expect(location.startsWith(s3.endpoint)).toBe(true);
    const whole = await followRedirect(location);
    expect(whole.res.status).toBe(200);
    expect(sha1(whole.body)).toBe(sha1(data));
    expect(whole.res.headers.get('content-type')).toBe('application/pdf');
    expect(whole.res.headers.get('content-disposition')).toContain(
      "filename*=UTF-8''%E6%8A%A5%E5%91%8A%20final.pdf",
    );
    const ranged = await t.app.inject({
      url: `/api/files/${file.id}/content`,
      headers: { ...admin.headers, range: 'bytes=100-199' },
    });
    expect(ranged.statusCode).toBe(302);
    const part = await followRedirect(ranged.headers.location as string, { range: 'bytes=100-199' });
    expect(part.res.status).toBe(206);
    expect(part.body.equals(data.subarray(100, 200))).toBe(true);
    // HEAD and If-Range are answered by the app itself.
    expect(
      (await t.app.inject({ method: 'HEAD', url: `/api/files/${file.id}/content`, headers: admin.headers }))
        .statusCode,
    ).toBe(200);
    const ifRange = await t.app.inject({
      url: `/api/files/${file.id}/content`,
      headers: { ...admin.headers, range: 'bytes=0-9', 'if-range': `"${sha1(data)}"` },
    });
    expect(ifRange.statusCode).toBe(206);
    expect(ifRange.rawPayload.equals(data.subarray(0, 10))).toBe(true);

    // The S3 copy disappears: the app streams from the SFTP copy and repair puts it back.
    await s3.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey(sha1(data)) }));
    const fallback = await t.app.inject({ url: `/api/files/${file.id}/content`, headers: admin.headers });
    expect(fallback.statusCode).toBe(200);
    expect(sha1(fallback.rawPayload)).toBe(sha1(data));
    const report = await repair(t.app.services.clusterJobs.deps);
    expect(report.copied).toBeGreaterThanOrEqual(1);
    expect(await s3Sha1(bucket, objectKey(sha1(data)))).toBe(sha1(data));
    expect(
      (await t.app.inject({ url: `/api/files/${file.id}/content`, headers: admin.headers })).statusCode,
    ).toBe(302);
  });

  it('the scrub finds a damaged S3 copy and repair replaces it from the SFTP copy', async () => {
    const data = random(200_000);
    const file = await uploader(t, admin.headers).upload(data, 'rot.bin');
    const key = objectKey(sha1(data));
    // Same size, other bytes: only hashing finds it.
    const rotten = Buffer.from(data);
    rotten[12_345] = (rotten[12_345] as number) ^ 0xff;
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: rotten }));
    const report = await scrub(t.app.services.clusterJobs.deps);
    // Exactly the rotten copy; every other replica of this suite verifies.
    expect(report.corrupt).toBe(1);
    expect(report.missing).toBe(0);
    expect(report.repair.copied).toBe(1);
    expect(await s3Sha1(bucket, key)).toBe(sha1(data));
    const res = await t.app.inject({ url: `/api/files/${file.id}/content`, headers: admin.headers });
    expect(res.statusCode).toBe(302);
    expect(sha1((await followRedirect(res.headers.location as string)).body)).toBe(sha1(data));
  });

  it('share links redirect unless they count downloads', async () => {
    const data = random(50_000);
    const file = await uploader(t, admin.headers).upload(data, 'shared.bin');
    const share = async (body: object) =>
      (
        await t.app.inject({
          method: 'POST',
          url: `/api/files/${file.id}/shares`,
          headers: admin.headers,
          payload: body,
        })
      ).json().share;
    const open = await share({});
    const redirected = await t.app.inject({ url: `/api/public/shares/${open.token}/content` });
    expect(redirected.statusCode).toBe(302);
    expect(sha1((await followRedirect(redirected.headers.location as string)).body)).toBe(sha1(data));
    const limited = await share({ maxDownloads: 1 });
    const served = await t.app.inject({ url: `/api/public/shares/${limited.token}/content` });
    expect(served.statusCode).toBe(200);
    expect(sha1(served.rawPayload)).toBe(sha1(data));
    expect((await t.app.inject({ url: `/api/public/shares/${limited.token}/content` })).statusCode).toBe(410);
  });
});

describe('migrating from an SFTP node to an S3 node by draining it', () => {
  let sshd: SshdHandle;
  let t: TestApp;
  let second: AppInstance | undefined;
  const bucket = s3.bucket('migrate');

  beforeAll(async () => {
    sshd = await startSshd();
    t = await startTestApp({
      DFS_NODES: [sshd.url('password'), s3.nodeUrl(bucket, { presign: '0' })].join(','),
      DFS_REPLICAS: '1',
      DFS_CHUNK_SIZE: String(CHUNK),
      DFS_MAX_FILE_SIZE: String(1024 * MiB),
      DFS_HEARTBEAT_SECONDS: '0.3',
    });
    await allNodesUp(t);
  });
  afterAll(async () => {
    await second?.close();
    await t?.close();
    await sshd?.stop();
  });

  it('moves every object with verified bytes, with progress that survives a restart', async () => {
    const admin = await t.user('admin');
    const up = uploader(t, admin.headers);
    const files: Array<{ id: string; data: Buffer }> = [];
    for (let i = 0; i < 12; i++) {
      const data = random(20_000 + i * 7_000);
      files.push({ id: (await up.upload(data, `m${i}.bin`)).id, data });
    }
    const { repos } = t.app.services;
    const nodes = await repos.nodes.list();
    const sftpId = nodes.find((n) => n.kind === 'sftp')!.id;
    const held = await repos.contents.heldBy(sftpId);
    expect(held.objects).toBeGreaterThan(1);

    expect(
      (await t.app.inject({ method: 'POST', url: `/api/nodes/${sftpId}/drain`, headers: admin.headers }))
        .statusCode,
    ).toBe(200);
    const progress = async (app: AppInstance) => {
      const list = (await app.inject({ url: '/api/nodes', headers: admin.headers })).json();
      return list.items.find((n: { id: string }) => n.id === sftpId).drain;
    };
    const before = await progress(t.app);
    expect(before).toMatchObject({
      totalObjects: held.objects,
      totalBytes: held.bytes,
      movedObjects: 0,
      movedBytes: 0,
      remainingObjects: held.objects,
      etaSeconds: null,
    });

    // One content moves, then the app stops; another instance on the same database carries on.
    const view = t.app.services.cluster.view(0);
    const [first] = (await repos.contents.listNeedingRepair({
      countingIds: view.countingIds,
      memberIds: view.memberIds,
      drainingIds: view.drainingIds,
      wanted: 1,
      after: '',
      limit: 1,
    })) as Array<{ id: string; size: number }>;
    expect(view.drainingIds).toEqual([sftpId]);
    expect((await repairContents(t.app.services.clusterJobs.deps, [first!.id])).copied).toBe(1);
    await t.app.close();
    second = await buildApp(t.config, { logger: false });
    const mid = await progress(second);
    expect(mid).toMatchObject({
      startedAt: before.startedAt,
      movedObjects: 1,
      movedBytes: Number(first!.size),
    });
    expect(mid.remainingObjects).toBe(held.objects - 1);

    // The new instance copies only to nodes its heartbeat has seen up: on a busy machine the
    // bucket's first answer can come after start, and a pass before it would move nothing.
    const s3Id = nodes.find((n) => n.kind === 's3')!.id;
    await vi.waitFor(() => expect(second!.services.cluster.view(0).healthyIds).toContain(s3Id), {
      timeout: 15_000,
      interval: 100,
    });
    const report = await repair(second.services.clusterJobs.deps);
    expect(report.failed).toBe(0);
    expect(await progress(second)).toMatchObject({
      movedObjects: held.objects,
      remainingObjects: 0,
      remainingBytes: 0,
      etaSeconds: 0,
    });
    // Everything is on the bucket, byte for byte, and nothing is left on the SFTP node.
    for (const { data } of files) expect(await s3Sha1(bucket, objectKey(sha1(data)))).toBe(sha1(data));
    expect((await second.services.repos.contents.heldBy(sftpId)).objects).toBe(0);
    for (const { id, data } of files) {
      const res = await second.inject({ url: `/api/files/${id}/content`, headers: admin.headers });
      expect(res.statusCode).toBe(200);
      expect(sha1(res.rawPayload)).toBe(sha1(data));
    }
  });
});

describe('an app on one S3 node', () => {
  const bucket = s3.bucket('solo');
  let t: TestApp;
  let restarted: AppInstance | undefined;

  afterAll(async () => {
    await restarted?.close();
    await t?.close();
  });

  it('refuses chunks S3 cannot take as parts, naming the variable', () => {
    expect(() => loadConfig({ DFS_NODES: s3.nodeUrl(bucket), DFS_CHUNK_SIZE: String(MiB) })).toThrow(
      /DFS_CHUNK_SIZE: S3 nodes take chunks of at least 5242880 bytes/,
    );
    expect(() =>
      loadConfig({
        DFS_NODES: s3.nodeUrl(bucket),
        DFS_CHUNK_SIZE: String(CHUNK),
        DFS_MAX_FILE_SIZE: String(64 * 1024 ** 3),
      }),
    ).toThrow(/DFS_MAX_FILE_SIZE: with S3 nodes a file has at most 10000 chunks/);
  });

  it('finishes a speculative upload after a restart lost the running hash: the part is read back', async () => {
    t = await startTestApp({
      DFS_NODES: s3.nodeUrl(bucket),
      DFS_REPLICAS: '1',
      DFS_CHUNK_SIZE: String(CHUNK),
      DFS_MAX_FILE_SIZE: String(1024 * MiB),
      DFS_HEARTBEAT_SECONDS: '0.3',
    });
    const admin = await t.user('admin');
    const deadline = Date.now() + 30_000;
    while (t.app.services.cluster.liveNodeIds().length < 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const data = random(2 * CHUNK + 999);
    const up = uploader(t, admin.headers);
    // Speculative: no sha1 until complete.
    const created = await up.create({ name: 'spec.bin', size: data.length });
    expect(created.statusCode).toBe(201);
    const { uploadId } = created.json();
    const chunks = chunksOf(data, CHUNK);
    for (const i of [1, 0, 2]) expect((await up.put(uploadId, i, chunks[i]!)).statusCode).toBe(204);
    await t.app.close();
    restarted = await buildApp(t.config, { logger: false });
    const deadline2 = Date.now() + 30_000;
    while (restarted.services.cluster.liveNodeIds().length < 1 && Date.now() < deadline2) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const wrong = await restarted.inject({
      method: 'POST',
      url: `/api/uploads/${uploadId}/complete`,
      headers: admin.headers,
      payload: { sha1: sha1(random(10)) },
    });
    expect(wrong.statusCode).toBe(422);
    expect(await s3.keys(bucket, 'objects/')).toEqual([]);
    // The liar's upload is gone with its part: nothing is left on the bucket.
    expect(await s3.multipartUploads(bucket)).toEqual([]);
    expect(await s3.keys(bucket, '.dfs-parts/')).toEqual([]);

    const again = await restarted.inject({
      method: 'POST',
      url: '/api/uploads',
      headers: admin.headers,
      payload: { name: 'spec.bin', size: data.length },
    });
    const id2 = again.json().uploadId;
    for (const [i, chunk] of chunks.entries()) {
      const res = await restarted.inject({
        method: 'PUT',
        url: `/api/uploads/${id2}/chunks/${i}`,
        headers: { ...admin.headers, 'content-type': 'application/octet-stream', ...chunkChecksum(chunk) },
        payload: chunk,
      });
      expect(res.statusCode).toBe(204);
    }
    await restarted.close();
    restarted = await buildApp(t.config, { logger: false });
    while (restarted.services.cluster.liveNodeIds().length < 1) await new Promise((r) => setTimeout(r, 100));
    const done = await restarted.inject({
      method: 'POST',
      url: `/api/uploads/${id2}/complete`,
      headers: admin.headers,
      payload: { sha1: sha1(data) },
    });
    expect(done.statusCode).toBe(201);
    expect(await s3Sha1(bucket, objectKey(sha1(data)))).toBe(sha1(data));
    expect(await s3.multipartUploads(bucket)).toEqual([]);
    expect(await s3.keys(bucket, '.dfs-parts/')).toEqual([]);
    const res = await restarted.inject({
      url: `/api/files/${done.json().file.id}/content`,
      headers: admin.headers,
    });
    expect(res.statusCode).toBe(302);
  });
});

/** The id of the multipart upload that holds upload `uploadId`'s part. */
async function multipartIdOf(bucket: string, uploadId: string): Promise<string> {
  const out = await s3.client.send(
    new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `.dfs-parts/${uploadId}` }),
  );
  const id = out.Uploads?.[0]?.UploadId;
  if (!id) throw new Error(`no multipart upload for ${uploadId}`);
  return id;
}

describe('tus, WebDAV and ZIP downloads on an S3-only node', () => {
  const bucket = s3.bucket('protocols');
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  const TUS = { 'tus-resumable': '1.0.0' };
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  beforeAll(async () => {
    t = await startTestApp({
      DFS_NODES: s3.nodeUrl(bucket, { presign: '0' }),
      DFS_REPLICAS: '1',
      DFS_CHUNK_SIZE: String(CHUNK),
      DFS_MAX_FILE_SIZE: String(1024 * MiB),
      DFS_HEARTBEAT_SECONDS: '0.3',
    });
    alice = await t.user('alice');
    const deadline = Date.now() + 30_000;
    while (t.app.services.cluster.liveNodeIds().length < 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(() => t?.close());

  const content = async (id: string) => {
    const res = await t.app.inject({ url: `/api/files/${id}/content`, headers: alice.headers });
    expect(res.statusCode).toBe(200);
    return res.rawPayload;
  };

  it('tus PATCHes that end inside chunks keep their tails as parts in the bucket, and nothing is left after', async () => {
    const data = random(2 * CHUNK + 777);
    const made = await t.app.inject({
      method: 'POST',
      url: '/api/tus/',
      headers: {
        ...alice.headers,
        ...TUS,
        'upload-length': String(data.length),
        'upload-metadata': `filename ${b64('tus.bin')}`,
      },
    });
    expect(made.statusCode).toBe(201);
    const id = String(made.headers.location).split('/').pop()!;
    let offset = 0;
    // Inside chunk 0, then across the chunk boundary, then the rest: two tails are written to the
    // bucket and read back before the chunks they belong to are whole.
    for (const end of [3 * MiB, 3 * MiB + CHUNK, data.length]) {
      const res = await t.app.inject({
        method: 'PATCH',
        url: `/api/tus/${id}`,
        headers: {
          ...alice.headers,
          ...TUS,
          'content-type': 'application/offset+octet-stream',
          'upload-offset': String(offset),
        },
        payload: data.subarray(offset, end),
      });
      expect(res.statusCode, res.body).toBe(204);
      expect(res.headers['upload-offset']).toBe(String(end));
      if (offset === 0) {
        // The 3 MiB of an unfinished chunk wait in the bucket as a tail part, not in the app.
        const held = [...(await s3.multipartUploads(bucket)), ...(await s3.keys(bucket, '.dfs-parts/'))];
        expect(held.some((key) => key.includes(`${id}-t`))).toBe(true);
      }
      offset = end;
    }
    const file = (await t.app.inject({ url: '/api/files?q=tus.bin', headers: alice.headers })).json()
      .items[0];
    expect(file).toMatchObject({ size: data.length, sha1: sha1(data) });
    expect(sha1(await content(file.id))).toBe(sha1(data));
    expect(await s3Sha1(bucket, objectKey(sha1(data)))).toBe(sha1(data));
    expect(await s3.multipartUploads(bucket)).toEqual([]);
    expect(await s3.keys(bucket, '.dfs-parts/')).toEqual([]);
  });

  it('a WebDAV PUT streams to the bucket, and a ZIP of both files reads them back verified', async () => {
    const secret = await t.appPassword(alice.headers, 'dav');
    const basic = { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}` };
    const data = random(CHUNK + CHUNK / 2);
    const put = await t.app.inject({ method: 'PUT', url: '/dav/put.bin', headers: basic, payload: data });
    expect(put.statusCode).toBe(201);
    const got = await t.app.inject({ url: '/dav/put.bin', headers: basic });
    expect(got.statusCode).toBe(200);
    expect(sha1(got.rawPayload)).toBe(sha1(data));
    expect(await s3Sha1(bucket, objectKey(sha1(data)))).toBe(sha1(data));
    expect(await s3.keys(bucket, '.dfs-parts/')).toEqual([]);

    const files = (await t.app.inject({ url: '/api/files', headers: alice.headers })).json().items as Array<{
      id: string;
      name: string;
      sha1: string;
      size: number;
    }>;
    expect(files.map((f) => f.name).sort()).toEqual(['put.bin', 'tus.bin']);
    const made = await t.app.inject({
      method: 'POST',
      url: '/api/archives',
      headers: alice.headers,
      payload: { ids: files.map((f) => f.id), name: 'both' },
    });
    expect(made.statusCode).toBe(201);
    const zip = await t.app.inject({ url: made.json().url, headers: alice.headers });
    expect(zip.statusCode).toBe(200);
    expect(Number(zip.headers['content-length'])).toBe(zip.rawPayload.length);
    const entries = await unzipEntries(zip.rawPayload);
    expect(entries.sort((a, b) => a.path.localeCompare(b.path))).toEqual(
      files
        .map((f) => ({ path: f.name, sha1: f.sha1, size: f.size }))
        .sort((a, b) => a.path.localeCompare(b.path)),
    );
  });

  it('a chunk that differs from its Content-MD5 is refused by the bucket: 400, no part, the node stays', async () => {
    // Every node checks Content-MD5 itself here, so the app leaves that check to the bucket.
    const { cluster } = t.app.services;
    expect(cluster.liveNodeIds().map((id) => cluster.driver(id)?.capabilities().checksMd5)).toEqual([true]);
    const data = random(2 * CHUNK);
    const up = uploader(t, alice.headers);
    const { uploadId } = (await up.create({ name: 'md5.bin', size: data.length, sha1: sha1(data) })).json();
    const [first, second] = chunksOf(data, CHUNK) as [Buffer, Buffer];
    const bad = await up.put(uploadId, 0, first, { 'content-md5': md5Base64(second) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('checksum_mismatch');
    const parts = await s3.client.send(
      new ListPartsCommand({
        Bucket: bucket,
        Key: `.dfs-parts/${uploadId}`,
        UploadId: await multipartIdOf(bucket, uploadId),
      }),
    );
    expect(parts.Parts ?? []).toEqual([]);
    expect((await up.get(uploadId)).json().receivedChunks).toEqual([]);
    expect(t.app.services.cluster.liveNodeIds()).toHaveLength(1);
    for (const [i, chunk] of [first, second].entries())
      expect((await up.put(uploadId, i, chunk)).statusCode).toBe(204);
    expect((await up.complete(uploadId)).statusCode).toBe(201);
    expect(await s3Sha1(bucket, objectKey(sha1(data)))).toBe(sha1(data));
  });
});

/** Every file entry of a ZIP as yauzl reads it: what a user's unzip would see. */
function unzipEntries(zip: Buffer): Promise<Array<{ path: string; sha1: string; size: number }>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true, strictFileNames: true }, (err, file) => {
      if (err || !file) return reject(err);
      const out: Array<{ path: string; sha1: string; size: number }> = [];
      file.on('error', reject);
      file.on('end', () => resolve(out));
      file.on('entry', (entry: yauzl.Entry) => {
        file.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e);
          const parts: Buffer[] = [];
          stream.on('data', (b: Buffer) => parts.push(b));
          stream.on('end', () => {
            const bytes = Buffer.concat(parts);
            out.push({ path: entry.fileName, sha1: sha1(bytes), size: bytes.length });
            file.readEntry();
          });
        });
      });
      file.readEntry();
    });
  });
}
