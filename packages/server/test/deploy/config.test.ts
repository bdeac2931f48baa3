import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, resolveSecret } from '../../src/config.ts';

describe('loadConfig', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-config-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('names DFS_NODES when a node URL is bad, without its password', () => {
    const bad = (nodes: string) => () => loadConfig({ DFS_DATA_DIR: dir, DFS_NODES: nodes });
    expect(bad('sftp://dfs:hunter2@/srv/dfs')).toThrow(ConfigError);
    expect(bad('sftp://dfs:hunter2@/srv/dfs')).toThrow(
      /^DFS_NODES: storage node URL "sftp:\/\/dfs:\*\*\*@\/srv\/dfs" is not a URL/,
    );
    expect(bad('local:///srv/a,ftp://host/x')).toThrow(/^DFS_NODES: .*unsupported scheme "ftp:"/);
    expect(bad('sftp://dfs:hunter2@host:99999/srv')).not.toThrow(/hunter2/);
  });

  it('writes nothing; the secret is made when the app starts', async () => {
    const dataDir = path.join(dir, 'fresh');
    const config = loadConfig({ DFS_DATA_DIR: dataDir });
    expect(config.secret).toBeNull();
    expect(existsSync(dataDir)).toBe(false);
    const secret = resolveSecret(config);
    expect(secret.length).toBeGreaterThanOrEqual(32);
    expect(await readdir(dataDir)).toEqual(['secret']);
    // The same one on the next start.
    expect(resolveSecret(loadConfig({ DFS_DATA_DIR: dataDir }))).toBe(secret);
    expect(resolveSecret(loadConfig({ DFS_DATA_DIR: dataDir, DFS_SECRET: 'x'.repeat(32) }))).toBe(
      'x'.repeat(32),
    );
  });
});

describe('loadConfig conversions', () => {
  it('converts numbers and names a value that is not one', () => {
    const config = loadConfig({ DFS_DATA_DIR: '/tmp/dfs-x', DFS_PORT: '9090', DFS_HEARTBEAT_SECONDS: '2.5' });
    expect(config.port).toBe(9090);
    expect(config.heartbeatMs).toBe(2500);
    expect(() => loadConfig({ DFS_PORT: 'eighty' })).toThrow(/^DFS_PORT: .*\(got "eighty"\)/);
    expect(() => loadConfig({ DFS_REPLICAS: '1.5' })).toThrow(/^DFS_REPLICAS: /);
    // An empty variable is as good as unset: the default applies.
    expect(loadConfig({ DFS_DATA_DIR: '/tmp/dfs-x', DFS_PORT: '' }).port).toBe(8080);
  });
});
