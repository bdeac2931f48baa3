import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type SshdHandle, startSshd } from '@dfs/cluster/sshd';
import { expect } from 'vitest';
import type { ClusterJobDeps } from '../../src/jobs/repair.ts';
import { objectKey } from '../../src/storage/types.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { sha1 } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

export const HEARTBEAT_MS = 300;

export interface TestCluster {
  t: TestApp;
  sshd: SshdHandle[];
  admin: Awaited<ReturnType<TestApp['user']>>;
  up: ReturnType<typeof uploader>;
  /** The one-request upload (`POST /api/files`): quicker than chunks for big test files. */
  uploadSimple(data: Buffer, name: string): Promise<{ id: string; sha1: string }>;
  deps(overrides?: Partial<ClusterJobDeps>): ClusterJobDeps;
  nodeId(handle: SshdHandle): Promise<string>;
  handleOf(nodeId: string): Promise<SshdHandle>;
  /** Where a content's object lives on a node, on this machine's disk. */
  objectPath(handle: SshdHandle, hash: string): string;
  /** Replica rows of a content, with the node they are on. */
  replicas(hash: string): Promise<Array<{ node_id: string; state: string }>>;
  /** Downloads through the API and checks the bytes. */
  expectDownload(file: { id: string }, data: Buffer): Promise<void>;
  /** Asserts R healthy replicas on the given nodes, each object present with the right bytes. */
  expectReplicated(hash: string, copies: number, allowed?: SshdHandle[]): Promise<string[]>;
  nodes(): Promise<Array<Record<string, unknown> & { id: string; status: string; contents: number }>>;
  close(): Promise<void>;
}

/** Three (or `count`) real sshd nodes on loopback behind one app with two replicas. */
export async function startCluster(count = 3, env: Record<string, string> = {}): Promise<TestCluster> {
  const sshd = await Promise.all(Array.from({ length: count }, () => startSshd()));
  const t = await startTestApp({
    DFS_NODES: sshd.map((h) => h.url('password')).join(','),
    DFS_REPLICAS: '2',
    DFS_HEARTBEAT_SECONDS: String(HEARTBEAT_MS / 1000),
    DFS_CHUNK_SIZE: String(CHUNK),
    DFS_REPAIR_GRACE_SECONDS: '60',
    DFS_SCRUB_BYTES_PER_SECOND: String(1024 * 1024 * 1024),
    DFS_SCRUB_PERIOD_DAYS: '0',
    ...env,
  });
  const admin = await t.user('admin');
  const { repos } = t.app.services;
  const byName = async (handle: SshdHandle) => {
    const rows = await repos.nodes.list();
    const row = rows.find((r) => r.name.includes(`:${handle.port}/`));
    if (!row) throw new Error(`no node row for port ${handle.port}`);
    return row.id;
  };
  const cluster: TestCluster = {
    t,
    sshd,
    admin,
    up: uploader(t, admin.headers),
    async uploadSimple(data, name) {
      const boundary = '----dfs-cluster-test';
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/files',
        headers: { ...admin.headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
        payload: Buffer.concat([
          Buffer.from(
            `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\n` +
              'Content-Type: application/octet-stream\r\n\r\n',
          ),
          data,
          Buffer.from(`\r\n--${boundary}--\r\n`),
        ]),
      });
      if (res.statusCode !== 201) throw new Error(`upload failed: ${res.body}`);
      return res.json().file;
    },
    deps: (overrides = {}) => ({ ...t.app.services.clusterJobs.deps, ...overrides }),
    nodeId: byName,
    async handleOf(nodeId) {
      for (const handle of sshd) if ((await byName(handle)) === nodeId) return handle;
      throw new Error(`no sshd for node ${nodeId}`);
    },
    objectPath: (handle, hash) => path.join(handle.root, objectKey(hash)),
    async replicas(hash) {
      const content = await repos.contents.findBySha1(hash);
      if (!content) return [];
      return repos.contents.replicasOf(content.id);
    },
    async expectDownload(file, data) {
      const res = await t.app.inject({ url: `/api/files/${file.id}/content`, headers: admin.headers });
      expect(res.statusCode).toBe(200);
      expect(sha1(res.rawPayload)).toBe(sha1(data));
    },
    async expectReplicated(hash, copies, allowed = sshd) {
      const rows = (await cluster.replicas(hash)).filter((r) => r.state === 'ok');
      const allowedIds = await Promise.all(allowed.map(byName));
      const on = rows.map((r) => r.node_id).filter((id) => allowedIds.includes(id));
      expect(new Set(on).size, `copies of ${hash.slice(0, 8)} on the allowed nodes`).toBeGreaterThanOrEqual(
        copies,
      );
      for (const nodeId of on) {
        const handle = await cluster.handleOf(nodeId);
        // Through the driver (what the server sees) and on disk (what is really there).
        expect(await t.app.services.cluster.driver(nodeId)?.stat(objectKey(hash))).not.toBeNull();
        expect(sha1(await readFile(cluster.objectPath(handle, hash)))).toBe(hash);
      }
      return on;
    },
    async nodes() {
      const res = await t.app.inject({ url: '/api/nodes', headers: admin.headers });
      expect(res.statusCode).toBe(200);
      return res.json().items;
    },
    async close() {
      await t.close();
      await Promise.all(sshd.map((h) => h.stop()));
    },
  };
  return cluster;
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 5_000,
  intervalMs = 25,
): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return Date.now() - started;
}
