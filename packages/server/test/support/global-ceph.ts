import { startCeph } from '@dfs/cluster/ceph';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The S3 gateway of the suite's Ceph; each test file uses its own buckets. */
    rgw: { endpoint: string; port: number; accessKey: string; secretKey: string };
  }
}

/**
 * One real Ceph (mon + osd + radosgw) for the whole `s3` project. Set DFS_TEST_S3 to
 * `http://KEY:SECRET@host:port` to run against an S3 endpoint you already have instead.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.DFS_TEST_S3;
  if (external) {
    const u = new URL(external);
    project.provide('rgw', {
      endpoint: `${u.protocol}//${u.host}`,
      port: Number(u.port),
      accessKey: decodeURIComponent(u.username),
      secretKey: decodeURIComponent(u.password),
    });
    return async () => {};
  }
  const started = Date.now();
  const ceph = await startCeph();
  if (process.env.DFS_TEST_VERBOSE) console.log(`[ceph] ready in ${Date.now() - started} ms`);
  project.provide('rgw', {
    endpoint: ceph.endpoint,
    port: ceph.port,
    accessKey: ceph.accessKey,
    secretKey: ceph.secretKey,
  });
  return () => ceph.stop();
}
