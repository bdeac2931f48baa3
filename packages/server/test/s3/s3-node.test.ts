import { randomBytes } from 'node:crypto';
import { DeleteBucketCommand, DeleteObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { freePort } from '@dfs/cluster/app-process';
import { describe, expect, it } from 'vitest';
import { parseNodeUrl } from '../../src/storage/node-spec.ts';
import { createNode } from '../../src/storage/node-url.ts';
import { S3_MIN_PART_BYTES } from '../../src/storage/s3/limits.ts';
import { NodeUnavailableError, objectKey, type StorageNode } from '../../src/storage/types.ts';
import { readAll, sourceOf, storageConformance } from '../storage/conformance.ts';
import { rgw } from '../support/s3.ts';

const s3 = rgw();
const MiB = 1024 * 1024;

async function emptyBucket(bucket: string): Promise<void> {
  const out = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }));
  for (const item of out.Contents ?? []) {
    await s3.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: item.Key }));
  }
  await s3.client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
}

for (const prefix of ['', '/tenant/a']) {
  storageConformance(`s3 on Ceph RGW${prefix ? ` (prefix ${prefix})` : ''}`, async () => {
    const bucket = s3.bucket('conf');
    const node = await createNode(parseNodeUrl(s3.nodeUrl(`${bucket}${prefix}`)));
    return {
      node,
      partChunkBytes: S3_MIN_PART_BYTES,
      cleanup: async () => {
        await node.close();
        await emptyBucket(bucket);
      },
    };
  });
}

describe('s3 node: what only S3 has', () => {
  const open = async (url: string): Promise<StorageNode> => {
    const node = await createNode(parseNodeUrl(url));
    await node.connect();
    return node;
  };

  it('an unfinished part is a multipart upload, and deleting the part aborts it', async () => {
    const bucket = s3.bucket('mp');
    const node = await open(s3.nodeUrl(bucket));
    const id = '00000000-0000-4000-8000-00000000aaaa';
    const chunk = S3_MIN_PART_BYTES;
    await node.writePart(id, chunk, randomBytes(100), { chunkSize: chunk });
    expect(await s3.multipartUploads(bucket)).toEqual([`.dfs-parts/${id}`]);
    // Another process (no cached upload id) writes the next chunk into the same upload.
    const other = await open(s3.nodeUrl(bucket));
    await other.writePart(id, 0, randomBytes(chunk), { chunkSize: chunk });
    expect(await s3.multipartUploads(bucket)).toHaveLength(1);
    const parts: string[] = [];
    for await (const p of other.listParts()) parts.push(p.partId);
    expect(parts).toEqual([id]);
    // Objects listed by the node never include parts.
    const listed: string[] = [];
    for await (const entry of node.list()) listed.push(entry.key);
    expect(listed).toEqual([]);
    await other.deletePart(id);
    expect(await s3.multipartUploads(bucket)).toEqual([]);
    expect(await s3.keys(bucket)).toEqual([]);
    await node.close();
    await other.close();
  });

  it('a chunk smaller than the chunk size in the middle is refused when the part is published', async () => {
    const bucket = s3.bucket('small');
    const node = await open(s3.nodeUrl(bucket));
    const id = '00000000-0000-4000-8000-00000000bbbb';
    const data = randomBytes(2 * MiB);
    await node.writePart(id, 0, data.subarray(0, MiB), { chunkSize: MiB });
    await node.writePart(id, MiB, data.subarray(MiB), { chunkSize: MiB });
    // S3 refuses parts under 5 MiB: the commit fails, nothing is published, the part stays.
    await expect(node.commitPart(id, objectKey('a'.repeat(40)), data.length)).rejects.toThrow();
    expect(await node.stat(objectKey('a'.repeat(40)))).toBeNull();
    await node.deletePart(id);
    expect(await s3.multipartUploads(bucket)).toEqual([]);
    await node.close();
  });

  it('a put that fails half-way leaves no multipart upload behind', async () => {
    const bucket = s3.bucket('fail');
    const node = await open(s3.nodeUrl(bucket));
    const data = randomBytes(20 * MiB);
    await expect(node.put('objects/x/y/z', sourceOf(data), data.length + 1)).rejects.toThrow(/size/);
    expect(await s3.multipartUploads(bucket)).toEqual([]);
    expect(await node.stat('objects/x/y/z')).toBeNull();
    await node.put('objects/x/y/z', sourceOf(data), data.length);
    expect((await readAll(await node.get('objects/x/y/z'))).equals(data)).toBe(true);
    await node.close();
  });

  it('presigned GETs serve the bytes with the given headers, Range included; presign=0 turns them off', async () => {
    const bucket = s3.bucket('presign');
    const node = await open(s3.nodeUrl(bucket));
    const data = randomBytes(300_000);
    await node.put('objects/p/q/r', sourceOf(data), data.length);
    const url = await node.presignGet?.('objects/p/q/r', {
      expiresInSeconds: 60,
      contentDisposition: 'attachment; filename="report.pdf"; filename*=UTF-8\'\'%E6%8A%A5%E5%91%8A.pdf',
      contentType: 'application/pdf',
    });
    expect(url).toMatch(/^http/);
    const whole = await fetch(url as string);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe('application/pdf');
    expect(whole.headers.get('content-disposition')).toContain("filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf");
    expect(Buffer.from(await whole.arrayBuffer()).equals(data)).toBe(true);
    const part = await fetch(url as string, { headers: { range: 'bytes=1000-1999' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(1000, 2000))).toBe(true);
    const tampered = (url as string).replace(
      /X-Amz-Signature=[0-9a-f]/,
      (m) => `${m.slice(0, -1)}${m.endsWith('0') ? '1' : '0'}`,
    );
    expect((await fetch(tampered)).status).toBe(403);

    const off = await open(s3.nodeUrl(bucket, { presign: '0' }));
    expect(
      await off.presignGet?.('objects/p/q/r', {
        expiresInSeconds: 60,
        contentDisposition: 'attachment',
        contentType: 'x/y',
      }),
    ).toBeNull();
    await node.close();
    await off.close();
  });

  it('an endpoint that is not there, or refuses the secret, is unavailable (not a crash)', async () => {
    const gone = await createNode(
      parseNodeUrl(s3.nodeUrl('nowhere', {}).replace(/@[^/]+\//, `@127.0.0.1:${await freePort()}/`)),
    );
    await expect(gone.ping()).rejects.toBeInstanceOf(NodeUnavailableError);
    await expect(gone.stat('objects/a/b/c')).rejects.toBeInstanceOf(NodeUnavailableError);
    await gone.close();
    const bucket = s3.bucket('auth');
    await (await open(s3.nodeUrl(bucket))).close();
    const wrong = await createNode(parseNodeUrl(s3.nodeUrl(bucket, {}, 'not-the-secret')));
    await expect(wrong.ping()).rejects.toBeInstanceOf(NodeUnavailableError);
    await wrong.close();
  });
});
