/**
 * `pnpm --filter @dfs/server build`: the server as one ES module, dist/main.js, for `node` in
 * production (pnpm start, the Docker image), with the storage drivers that not every deployment
 * needs in chunks/ beside it. @dfs/shared is bundled in; every npm dependency stays external, and
 * the digest worker is bundled beside it. Types are checked by
 * `pnpm typecheck`, not here.
 */
import { renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { bundlePackage } from '../../../scripts/lib/bundle.ts';

const root = path.resolve(import.meta.dirname, '..');
// Built beside dist/ and swapped in whole at the end: a server running from dist/ (pnpm start, a
// test, `pnpm cluster` building again) must never find it half-written or empty — a digest
// thread starting then died on a missing hash-worker.js.
const out = path.join(root, `.dist-${process.pid}`);
rmSync(out, { recursive: true, force: true });
const started = Date.now();
const mainBytes = await bundlePackage({
  packageRoot: root,
  entry: 'src/main.ts',
  outfile: path.join(out, 'main.js'),
  sourcemap: true,
  // The SFTP and S3 drivers load with their clients only when such a node is configured.
  splitting: true,
});
// Worker threads load their code from a file: the digest worker is bundled beside main.js, where
// `new URL('./hash-worker.js', import.meta.url)` finds it; it is the same hashing module
// (services/hashing/), not a copy of it.
const workerBytes = await bundlePackage({
  packageRoot: root,
  entry: 'src/services/hashing/worker.ts',
  outfile: path.join(out, 'hash-worker.js'),
  sourcemap: true,
});
// `dfs admin …` on a server host: the operations commands, with the same settings as the app.
const adminBytes = await bundlePackage({
  packageRoot: root,
  entry: 'src/admin/main.ts',
  outfile: path.join(out, 'admin.js'),
  sourcemap: true,
  splitting: true,
});
const dist = path.join(root, 'dist');
const old = path.join(root, `.dist-old-${process.pid}`);
try {
  renameSync(dist, old);
} catch (error) {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}
renameSync(out, dist);
rmSync(old, { recursive: true, force: true });
console.log(
  `dist/main.js and dist/admin.js: ${((mainBytes + workerBytes + adminBytes) / 1024).toFixed(0)} KiB with its chunks and source maps, in ${Date.now() - started} ms`,
);
