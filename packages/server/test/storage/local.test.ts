import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalNode } from '../../src/storage/local.ts';
import { storageConformance } from './conformance.ts';

storageConformance('local', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-local-node-'));
  const root = path.join(dir, 'node');
  return {
    node: new LocalNode(root),
    localRoot: root,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('LocalNode', () => {
  it('refuses a relative root', () => {
    expect(() => new LocalNode('data')).toThrow(/absolute/);
  });

  it('ping fails with NodeUnavailableError when the root is gone', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-local-node-'));
    const node = new LocalNode(path.join(dir, 'node'));
    await node.connect();
    await rm(dir, { recursive: true, force: true });
    await expect(node.ping()).rejects.toMatchObject({ name: 'NodeUnavailableError' });
  });
});
