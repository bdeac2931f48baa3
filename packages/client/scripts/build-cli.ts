/**
 * `pnpm --filter @dfs/client build`: the `dfs` command as one ES module, dist/cli.js, run by plain
 * `node` (the package's `bin`). @dfs/shared and the client core are bundled in; npm dependencies
 * (hash-wasm, …) stay external and load from node_modules.
 */
import { chmodSync, rmSync } from 'node:fs';
import path from 'node:path';
import { bundlePackage } from '../../../scripts/lib/bundle.ts';

const root = path.resolve(import.meta.dirname, '..');

export const CLI_BUNDLE = path.join(root, 'dist/cli.js');
export const CLI_PACKAGE_ROOT = root;

/**
 * Builds the bundle at `outfile` (default dist/cli.js). It must stay inside this package so its
 * external dependencies resolve from the package's node_modules.
 */
export async function buildCli(outfile = CLI_BUNDLE): Promise<void> {
  if (outfile === CLI_BUNDLE) rmSync(path.join(root, 'dist'), { recursive: true, force: true });
  await bundlePackage({ packageRoot: root, entry: 'src/cli.ts', outfile, banner: '#!/usr/bin/env node' });
  chmodSync(outfile, 0o755);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const started = Date.now();
  await buildCli();
  console.log(`dist/cli.js in ${Date.now() - started} ms`);
}
