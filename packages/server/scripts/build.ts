/**
 * `pnpm --filter @dfs/server build`: the server as one ES module, dist/main.js, for `node` in
 * production (pnpm start, the Docker image), with the storage drivers that not every deployment
 * needs in chunks/ beside it. @dfs/shared is bundled in; every npm dependency stays external, and
 * the one worker file is copied beside it. Types are checked by
 * `pnpm typecheck`, not here.
 */
import { copyFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { bundlePackage } from '../../../scripts/lib/bundle.ts';

const root = path.resolve(import.meta.dirname, '..');
rmSync(path.join(root, 'dist'), { recursive: true, force: true });
const started = Date.now();
const bytes = await bundlePackage({
  packageRoot: root,
  entry: 'src/main.ts',
  outfile: path.join(root, 'dist/main.js'),
  sourcemap: true,
  // The SFTP and S3 drivers load with their clients only when such a node is configured.
  splitting: true,
});
// Worker threads load their code from a file: the chunk-digest worker sits next to the bundle,
// where `new URL('./chunk-digest-worker.mjs', import.meta.url)` finds it.
copyFileSync(
  path.join(root, 'src/services/chunk-digest-worker.mjs'),
  path.join(root, 'dist/chunk-digest-worker.mjs'),
);
console.log(
  `dist/main.js: ${(bytes / 1024).toFixed(0)} KiB with its chunks and source maps, in ${Date.now() - started} ms`,
);
