import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { checkoutRoot, defaultDataDir, legacyDataDirNotice } from '../../src/data-dir.ts';

const REPO = path.resolve(import.meta.dirname, '../../../..');

describe('the default data directory', () => {
  const cwd = process.cwd();
  let elsewhere: string;
  beforeAll(async () => {
    elsewhere = await mkdtemp(path.join(os.tmpdir(), 'dfs-cwd-'));
  });
  afterEach(() => process.chdir(cwd));
  afterAll(() => rm(elsewhere, { recursive: true, force: true }));

  it('is data/ in the checkout whatever the working directory (pnpm start runs from packages/server)', () => {
    expect(checkoutRoot()).toBe(REPO);
    const seen = new Set<string>();
    for (const dir of [REPO, path.join(REPO, 'packages/server'), elsewhere]) {
      process.chdir(dir);
      seen.add(loadConfig({}).dataDir);
    }
    expect([...seen]).toEqual([defaultDataDir()]);
    // A developer's checkout may hold data in the old place; a clean one answers data/.
    expect([path.join(REPO, 'data'), path.join(REPO, 'packages/server/data')]).toContain(defaultDataDir());
    process.chdir(elsewhere);
    expect(loadConfig({ DFS_DATA_DIR: 'mine' }).dataDir).toBe(path.join(elsewhere, 'mine'));
  });

  it('keeps a checkout on the data earlier versions of pnpm start wrote to packages/server/data, and says so', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'dfs-root-'));
    try {
      expect(defaultDataDir(root)).toBe(path.join(root, 'data'));
      const legacy = path.join(root, 'packages/server/data');
      await mkdir(legacy, { recursive: true });
      await writeFile(path.join(legacy, 'dfs.sqlite'), '');
      expect(defaultDataDir(root)).toBe(legacy);
      expect(legacyDataDirNotice(legacy, root)).toContain(`move it to ${path.join(root, 'data')}`);
      // Once data/ exists it wins, and nothing is said.
      await mkdir(path.join(root, 'data'));
      expect(defaultDataDir(root)).toBe(path.join(root, 'data'));
      expect(legacyDataDirNotice(path.join(root, 'data'), root)).toBeUndefined();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
