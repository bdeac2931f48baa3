import { randomBytes } from 'node:crypto';
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { inject } from 'vitest';

/** The suite's gateway (test/support/global-ceph.ts): node URLs and a plain SDK client to look. */
export function rgw() {
  const { endpoint, accessKey, secretKey } = inject('rgw');
  const u = new URL(endpoint);
  const tls = u.protocol === 'https:' ? '1' : '0';
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    client,
    endpoint,
    /** A fresh bucket name per call: test files never share state. */
    bucket: (label = 'b') => `dfs-${label}-${randomBytes(4).toString('hex')}`,
    nodeUrl: (bucket: string, params: Record<string, string> = {}, secret = secretKey) =>
      `s3://${accessKey}:${encodeURIComponent(secret)}@${u.host}/${bucket}?${new URLSearchParams({ tls, ...params })}`,
    async multipartUploads(bucket: string, prefix = ''): Promise<string[]> {
      const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
      return (out.Uploads ?? []).map((u) => u.Key ?? '');
    },
    async keys(bucket: string, prefix = ''): Promise<string[]> {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (out.Contents ?? []).map((c) => c.Key ?? '').sort();
    },
  };
}
