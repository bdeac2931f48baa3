import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../../../..');
const tracked = new Set(execFileSync('git', ['ls-files'], { cwd: REPO, encoding: 'utf8' }).split('\n'));

/** Every package.json of the workspace, by its directory. */
function packages(): [string, { bin?: Record<string, string> | string; scripts?: Record<string, string> }][] {
  return [...tracked]
    .filter((file) => file.endsWith('package.json') && !file.includes('node_modules'))
    .map((file) => [path.dirname(file), JSON.parse(readFileSync(path.join(REPO, file), 'utf8'))]);
}

describe('the workspace as a fresh clone installs it', () => {
  it('links every command to a file the clone has (a bin that only a build makes warns on install)', () => {
    const bins = packages().flatMap(([dir, pkg]) =>
      Object.values(typeof pkg.bin === 'string' ? { bin: pkg.bin } : (pkg.bin ?? {})).map((file) =>
        path.join(dir, file),
      ),
    );
    expect(bins.length).toBeGreaterThan(0);
    for (const file of bins) expect(tracked.has(path.normalize(file)), file).toBe(true);
  });

  it('runs long-lived scripts with exec, so a signal to pnpm reaches the program', () => {
    const scripts = Object.fromEntries(packages().map(([dir, pkg]) => [dir, pkg.scripts ?? {}]));
    expect(scripts['.']?.cluster).toMatch(/^exec /);
    expect(scripts['.']?.start).toMatch(/&& exec pnpm --filter @dfs\/server start$/);
    expect(scripts['packages/server']?.start).toMatch(/^exec node /);
  });
});
