import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  type _Object as S3Object,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  assertObjectKey,
  assertPartId,
  type ByteRange,
  commitAction,
  isObjectKey,
  isPartId,
  type NodeCapabilities,
  type NodeUsage,
  type ObjectEntry,
  ObjectNotFoundError,
  type PartWrite,
  type PresignOptions,
  type PutOptions,
  type StorageNode,
} from '../types.ts';
import { isNotFound, mapS3Error } from './errors.ts';
import { S3_MAX_PARTS } from './limits.ts';

// The SDK is pinned (package.json); its notice about future releases needing Node 22 says nothing
// about the version installed, and would otherwise print on every start.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface S3NodeOptions {
  /** `http(s)://host:port` */
  endpoint: string;
  region: string;
  bucket: string;
  /** '' or a key prefix ending in '/'. */
  prefix: string;
  accessKeyId: string;
  secretAccessKey: string;
  pathStyle: boolean;
  /** Whether downloads may be redirected to presigned URLs (clients can reach the endpoint). */
  presign: boolean;
  timeouts?: { connectMs?: number; requestMs?: number };
}

/** S3 copies at most 5 GiB in one request. */
const S3_MAX_COPY_BYTES = 5 * 1024 ** 3;
const COPY_PART_BYTES = 1024 ** 3;
/** Piece size of `put` (and its multipart threshold), and how many pieces are in flight. */
const PUT_PART_BYTES = 8 * 1024 * 1024;
const PUT_PARALLEL = 4;
const PARTS_DIR = '.dfs-parts/';
const UNSIGNED_COMMANDS = new Set(['UploadPartCommand', 'PutObjectCommand']);

/**
 * A node that is a bucket (or a prefix in one) of an S3-compatible store: Ceph RGW, MinIO, Alibaba
 * OSS, AWS S3. Only the S3 API is used.
 *
 * Objects are published whole by the store (a PutObject or CompleteMultipartUpload is atomic), so
 * there is no tmp file. An upload's part file is an S3 multipart upload on `.dfs-parts/<partId>`:
 * chunk i is part i + 1, uploaded as it arrives; finishing it ("sealing") completes the multipart
 * upload into that key, and `commitPart` copies it into place on the store's side (RGW shares the
 * tail objects, so this costs no data copy there) and deletes it.
 */
export class S3Node implements StorageNode {
  readonly kind = 's3' as const;
  readonly name: string;
  private readonly presignEnabled: boolean;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  /** partId → the multipart upload that holds its chunks, as this process found or made it. */
  private readonly multiparts = new Map<string, Promise<string | null>>();

  constructor(options: S3NodeOptions) {
    this.bucket = options.bucket;
    this.prefix = options.prefix;
    this.presignEnabled = options.presign;
    const host = new URL(options.endpoint).host;
    this.name = `s3://${host}/${options.bucket}${options.prefix ? `/${options.prefix.replace(/\/$/, '')}` : ''}`;
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      forcePathStyle: options.pathStyle,
      credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
      // dfs checks every byte with its own SHA-256/SHA-1 and sends Content-MD5 where it has one;
      // the SDK's extra CRC32 on every request would be one more pass over each byte.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
      requestHandler: {
        connectionTimeout: options.timeouts?.connectMs ?? 5_000,
        requestTimeout: options.timeouts?.requestMs ?? 60_000,
        httpAgent: { keepAlive: true, maxSockets: 64 },
        httpsAgent: { keepAlive: true, maxSockets: 64 },
      },
    });
    // SigV4 over plain HTTP signs a SHA-256 of every body: one more pass over each chunk, on a
    // body that already carries a Content-MD5 the store checks. Those requests are signed as
    // UNSIGNED-PAYLOAD instead (the headers, MD5 included, stay signed).
    this.client.middlewareStack.add(
      (next, context) => async (args) => {
        const headers = (args.request as { headers?: Record<string, string> } | undefined)?.headers;
        if (headers?.['content-md5'] && UNSIGNED_COMMANDS.has(context.commandName ?? '')) {
          headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        }
        return next(args);
      },
      { step: 'build', name: 'dfsUnsignedPayloadWithMd5' },
    );
  }

  // ---- plumbing ---------------------------------------------------------------------------------

  private keyOf(key: string): string {
    assertObjectKey(key);
    return this.prefix + key;
  }

  private partKeyOf(partId: string): string {
    assertPartId(partId);
    return `${this.prefix}${PARTS_DIR}${partId}`;
  }

  private async send<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw mapS3Error(err, what, this.name);
    }
  }

  private copySource(fullKey: string): string {
    return `${this.bucket}/${fullKey.split('/').map(encodeURIComponent).join('/')}`;
  }

  // ---- lifecycle ---------------------------------------------------------------------------------

  async connect(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      if (!isNotFound(err)) throw mapS3Error(err, 'HeadBucket', this.name);
      // Like a local or SFTP node creating its root directory.
      await this.send('CreateBucket', () =>
        this.client.send(new CreateBucketCommand({ Bucket: this.bucket })),
      );
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  capabilities(): NodeCapabilities {
    // Publishing is atomic and acknowledged writes are durable, but neither is a rename or an
    // fsync, and the store reports no free space. It checks every part's Content-MD5.
    return { atomicRename: false, fsync: false, statvfs: false, checksMd5: true };
  }

  async ping(): Promise<void> {
    await this.send('HeadBucket', () => this.client.send(new HeadBucketCommand({ Bucket: this.bucket })));
  }

  async usage(): Promise<NodeUsage> {
    return { usedBytes: null, freeBytes: null, totalBytes: null };
  }

  // ---- objects -------------------------------------------------------------------------------

  async put(key: string, source: Readable, expectedSize: number, options: PutOptions = {}): Promise<void> {
    const fullKey = this.keyOf(key);
    if (!Number.isSafeInteger(expectedSize) || expectedSize < 0) {
      source.destroy();
      throw new Error(`invalid expected size ${expectedSize}`);
    }
    let uploadId: string | undefined;
    const parts: { PartNumber: number; ETag: string | undefined }[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    const sendPart = async (body: Buffer): Promise<void> => {
      uploadId ??= await this.send('CreateMultipartUpload', async () => {
        const out = await this.client.send(
          new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: fullKey }),
        );
        if (!out.UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
        return out.UploadId;
      });
      const PartNumber = parts.length + 1;
      const entry = { PartNumber, ETag: undefined as string | undefined };
      parts.push(entry);
      const task = this.send('UploadPart', () =>
        this.client.send(
          new UploadPartCommand({
            Bucket: this.bucket,
            Key: fullKey,
            UploadId: uploadId,
            PartNumber,
            Body: body,
            ContentLength: body.length,
            ContentMD5: md5Base64(body),
          }),
        ),
      ).then(
        (out) => {
          entry.ETag = out.ETag;
        },
        (err) => {
          failure ??= err;
        },
      );
      inFlight.add(task);
      void task.finally(() => inFlight.delete(task));
      if (inFlight.size >= PUT_PARALLEL) await Promise.race(inFlight);
      if (failure) throw failure;
    };

    try {
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      let total = 0;
      for await (const piece of source) {
        const buf: Buffer = typeof piece === 'string' ? Buffer.from(piece) : piece;
        total += buf.length;
        if (total > expectedSize) throw new Error(`size mismatch: more than ${expectedSize} bytes`);
        pending.push(buf);
        pendingBytes += buf.length;
        // Strictly more than one part's worth: an object of up to one part is a single PutObject.
        while (pendingBytes > PUT_PART_BYTES) {
          const all = Buffer.concat(pending, pendingBytes);
          await sendPart(all.subarray(0, PUT_PART_BYTES));
          pending = [all.subarray(PUT_PART_BYTES)];
          pendingBytes -= PUT_PART_BYTES;
        }
      }
      if (total !== expectedSize)
        throw new Error(`size mismatch: got ${total} bytes, expected ${expectedSize}`);
      const rest = Buffer.concat(pending, pendingBytes);
      if (uploadId === undefined) {
        await options.beforeCommit?.();
        await this.send('PutObject', () =>
          this.client.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key: fullKey,
              Body: rest,
              ContentLength: rest.length,
              ContentMD5: md5Base64(rest),
            }),
          ),
        );
        return;
      }
      if (rest.length > 0) await sendPart(rest);
      await Promise.all(inFlight);
      if (failure) throw failure;
      await options.beforeCommit?.();
      await this.send('CompleteMultipartUpload', () =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: fullKey,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
        ),
      );
    } catch (err) {
      source.destroy();
      await Promise.allSettled(inFlight);
      if (uploadId) await this.abort(fullKey, uploadId).catch(() => undefined);
      throw err;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    return this.getFull(this.keyOf(key), range);
  }

  private async getFull(fullKey: string, range?: ByteRange): Promise<Readable> {
    const out = await this.send('GetObject', () =>
      this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: fullKey,
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      ),
    );
    return out.Body as Readable;
  }

  async stat(key: string): Promise<{ size: number } | null> {
    return this.head(this.keyOf(key));
  }

  private async head(fullKey: string): Promise<{ size: number } | null> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: fullKey }));
      return { size: Number(out.ContentLength ?? 0) };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw mapS3Error(err, 'HeadObject', this.name);
    }
  }

  async delete(key: string): Promise<void> {
    const fullKey = this.keyOf(key);
    await this.send('DeleteObject', () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: fullKey })),
    );
  }

  async *list(prefix = ''): AsyncIterable<ObjectEntry> {
    if (prefix) assertObjectKey(prefix);
    const listPrefix = this.prefix + (prefix ? `${prefix}/` : '');
    for await (const item of this.objectsUnder(listPrefix)) {
      const key = (item.Key ?? '').slice(this.prefix.length);
      if (!isObjectKey(key)) continue;
      yield { key, size: Number(item.Size ?? 0), mtimeMs: item.LastModified?.getTime() ?? 0 };
    }
  }

  /**
   * Every object whose key starts with `prefix`. Not the SDK's paginator: it follows the next
   * token without looking at IsTruncated, and Ceph RGW sends a next marker on the last page too,
   * which sends the paginator round forever (seen with ListParts).
   */
  private async *objectsUnder(prefix: string): AsyncIterable<S3Object> {
    let token: string | undefined;
    do {
      const out = await this.send('ListObjectsV2', () =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
        ),
      );
      yield* out.Contents ?? [];
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  /** Multipart uploads of `put` that a crashed writer left; part files are the sweeper's. */
  async sweepTmp(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for await (const upload of this.multipartUploads(this.prefix)) {
      if (upload.key.startsWith(this.prefix + PARTS_DIR)) continue;
      if (upload.initiatedMs > cutoff) continue;
      await this.abort(upload.key, upload.uploadId);
      removed++;
    }
    return removed;
  }

  async presignGet(key: string, options: PresignOptions): Promise<string | null> {
    if (!this.presignEnabled) return null;
    const fullKey = this.keyOf(key);
    return getSignedUrl(
      this.client,
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: fullKey,
        ResponseContentDisposition: options.contentDisposition,
        ResponseContentType: options.contentType,
      }),
      { expiresIn: options.expiresInSeconds },
    );
  }

  // ---- part files: multipart uploads -----------------------------------------------------------

  async writePart(partId: string, offset: number, data: Buffer, write: PartWrite): Promise<void> {
    const fullKey = this.partKeyOf(partId);
    const index = offset / write.chunkSize;
    if (!Number.isInteger(index) || index < 0 || index >= S3_MAX_PARTS) {
      throw new Error(
        `offset ${offset} is no chunk of ${write.chunkSize} bytes within S3's ${S3_MAX_PARTS} parts`,
      );
    }
    const uploadId = await this.multipartOf(partId, true);
    try {
      await this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: fullKey,
          UploadId: uploadId as string,
          PartNumber: index + 1,
          Body: data,
          ContentLength: data.length,
          ContentMD5: write.md5Base64 ?? md5Base64(data),
        }),
      );
    } catch (err) {
      // A sealed or aborted upload: look it up afresh next time.
      if (isNotFound(err)) this.multiparts.delete(partId);
      throw mapS3Error(err, 'UploadPart', this.name);
    }
  }

  async readPart(partId: string, range: ByteRange): Promise<Readable> {
    const fullKey = this.partKeyOf(partId);
    // A multipart upload's parts cannot be read until it is completed: reading a part back (only
    // `complete` does, when this instance's running hash misses) seals it first.
    if (!(await this.head(fullKey)) && !(await this.seal(partId))) {
      throw new ObjectNotFoundError(`no part ${partId} on ${this.name}`);
    }
    return this.getFull(fullKey, range);
  }

  async commitPart(partId: string, key: string, size: number): Promise<void> {
    const partKey = this.partKeyOf(partId);
    const fullKey = this.keyOf(key);
    const part = (await this.head(partKey)) ?? (await this.seal(partId, size));
    const action = commitAction(part, await this.head(fullKey), partId, key, size);
    if (action === 'done') return;
    if (action === 'publish') await this.copy(partKey, fullKey, size);
    await this.send('DeleteObject', () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: partKey })),
    );
  }

  async deletePart(partId: string): Promise<void> {
    const fullKey = this.partKeyOf(partId);
    this.multiparts.delete(partId);
    for await (const upload of this.multipartUploads(fullKey)) {
      if (upload.key === fullKey) await this.abort(fullKey, upload.uploadId);
    }
    await this.send('DeleteObject', () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: fullKey })),
    );
  }

  async *listParts(): AsyncIterable<{ partId: string; mtimeMs: number }> {
    const dir = this.prefix + PARTS_DIR;
    const seen = new Map<string, number>();
    for await (const upload of this.multipartUploads(dir)) {
      const partId = upload.key.slice(dir.length);
      if (isPartId(partId)) seen.set(partId, Math.max(seen.get(partId) ?? 0, upload.initiatedMs));
    }
    for await (const item of this.objectsUnder(dir)) {
      const partId = (item.Key ?? '').slice(dir.length);
      const mtimeMs = item.LastModified?.getTime() ?? 0;
      if (isPartId(partId)) seen.set(partId, Math.max(seen.get(partId) ?? 0, mtimeMs));
    }
    for (const [partId, mtimeMs] of seen) yield { partId, mtimeMs };
  }

  /**
   * The multipart upload of a part, made on first use. Instances that race to make it each list
   * the uploads on the key afterwards and all pick the oldest (then the smallest id); a loser
   * aborts its own, so every chunk lands in the same upload.
   */
  private multipartOf(partId: string, create: true): Promise<string>;
  private multipartOf(partId: string, create: false): Promise<string | null>;
  private multipartOf(partId: string, create: boolean): Promise<string | null> {
    const cached = this.multiparts.get(partId);
    if (cached) return cached;
    const fullKey = this.partKeyOf(partId);
    const found = (async () => {
      const existing = await this.oldestUpload(fullKey);
      if (existing || !create) return existing;
      const made = await this.send('CreateMultipartUpload', () =>
        this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: fullKey })),
      );
      const chosen = (await this.oldestUpload(fullKey)) ?? made.UploadId ?? null;
      if (made.UploadId && chosen !== made.UploadId)
        await this.abort(fullKey, made.UploadId).catch(() => undefined);
      if (!chosen) throw new Error('CreateMultipartUpload returned no UploadId');
      return chosen;
    })();
    this.multiparts.set(partId, found);
    found.then(
      (id) => {
        if (id === null) this.multiparts.delete(partId);
      },
      () => this.multiparts.delete(partId),
    );
    return found;
  }

  private async oldestUpload(fullKey: string): Promise<string | null> {
    const uploads: { uploadId: string; initiatedMs: number }[] = [];
    for await (const upload of this.multipartUploads(fullKey)) {
      if (upload.key === fullKey) uploads.push(upload);
    }
    uploads.sort((a, b) => a.initiatedMs - b.initiatedMs || a.uploadId.localeCompare(b.uploadId));
    return uploads[0]?.uploadId ?? null;
  }

  /**
   * Completes the part's multipart upload into its key, so it can be read and copied; null when
   * there is none. With `expectedSize`, a part whose chunks do not add up is left open (more chunks
   * may come) and the call rejects.
   */
  private async seal(partId: string, expectedSize?: number): Promise<{ size: number } | null> {
    const fullKey = this.partKeyOf(partId);
    const uploadId = await this.multipartOf(partId, false);
    if (!uploadId) return null;
    const parts: { PartNumber: number; ETag: string; size: number }[] = [];
    // A loop on IsTruncated, not the SDK's paginator (see objectsUnder).
    let marker: string | undefined;
    do {
      const out = await this.send('ListParts', () =>
        this.client.send(
          new ListPartsCommand({
            Bucket: this.bucket,
            Key: fullKey,
            UploadId: uploadId,
            PartNumberMarker: marker,
          }),
        ),
      );
      for (const p of out.Parts ?? []) {
        parts.push({ PartNumber: Number(p.PartNumber), ETag: p.ETag ?? '', size: Number(p.Size ?? 0) });
      }
      marker = out.IsTruncated ? out.NextPartNumberMarker : undefined;
    } while (marker);
    parts.sort((a, b) => a.PartNumber - b.PartNumber);
    const size = parts.reduce((sum, p) => sum + p.size, 0);
    if (expectedSize !== undefined && size !== expectedSize) {
      throw new Error(`size mismatch: part has ${size} bytes, expected ${expectedSize}`);
    }
    if (parts.some((p, i) => p.PartNumber !== i + 1)) {
      throw new Error(`part ${partId} has a gap in its chunks on ${this.name}`);
    }
    if (parts.length === 0) return null;
    // The ETag CompleteMultipartUpload answers is not used: Ceph 16 returns it empty.
    await this.send('CompleteMultipartUpload', () =>
      this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: fullKey,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map(({ PartNumber, ETag }) => ({ PartNumber, ETag })) },
        }),
      ),
    );
    this.multiparts.delete(partId);
    return this.head(fullKey);
  }

  /** A store-side copy: one CopyObject, or UploadPartCopy ranges past S3's 5 GiB copy limit. */
  private async copy(fromKey: string, toKey: string, size: number): Promise<void> {
    const CopySource = this.copySource(fromKey);
    if (size <= S3_MAX_COPY_BYTES) {
      await this.send('CopyObject', () =>
        this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: toKey, CopySource })),
      );
      return;
    }
    const made = await this.send('CreateMultipartUpload', () =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: toKey })),
    );
    const UploadId = made.UploadId as string;
    try {
      const parts: { PartNumber: number; ETag: string | undefined }[] = [];
      for (let start = 0, n = 1; start < size; start += COPY_PART_BYTES, n++) {
        const end = Math.min(size, start + COPY_PART_BYTES) - 1;
        const out = await this.send('UploadPartCopy', () =>
          this.client.send(
            new UploadPartCopyCommand({
              Bucket: this.bucket,
              Key: toKey,
              UploadId,
              PartNumber: n,
              CopySource,
              CopySourceRange: `bytes=${start}-${end}`,
            }),
          ),
        );
        parts.push({ PartNumber: n, ETag: out.CopyPartResult?.ETag });
      }
      await this.send('CompleteMultipartUpload', () =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: toKey,
            UploadId,
            MultipartUpload: { Parts: parts },
          }),
        ),
      );
    } catch (err) {
      await this.abort(toKey, UploadId).catch(() => undefined);
      throw err;
    }
  }

  private async abort(fullKey: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: fullKey, UploadId: uploadId }),
      );
    } catch (err) {
      if (!isNotFound(err)) throw mapS3Error(err, 'AbortMultipartUpload', this.name);
    }
  }

  /** Paged by two markers, on IsTruncated (see objectsUnder on the SDK's paginators). */
  private async *multipartUploads(
    prefix: string,
  ): AsyncIterable<{ key: string; uploadId: string; initiatedMs: number }> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const out = await this.send('ListMultipartUploads', () =>
        this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        ),
      );
      for (const u of out.Uploads ?? []) {
        if (u.Key && u.UploadId) {
          yield { key: u.Key, uploadId: u.UploadId, initiatedMs: u.Initiated?.getTime() ?? 0 };
        }
      }
      if (!out.IsTruncated) break;
      keyMarker = out.NextKeyMarker;
      uploadIdMarker = out.NextUploadIdMarker;
    } while (keyMarker);
  }
}

function md5Base64(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}
