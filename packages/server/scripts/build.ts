/**
 * `pnpm --filter @dfs/server build`: the server as one ES module, dist/main.js, for `node` in
 * production (pnpm start, the Docker image). The workspace packages (@dfs/shared) are bundled in;
 * every npm dependency stays external and loads from node_modules as usual, native addons
 * included. Types are checked by `pnpm typecheck`, not here.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
};
const external = Object.keys(pkg.dependencies)
  .filter((name) => !name.startsWith('@dfs/'))
  .flatMap((name) => [name, `${name}/*`]);

rmSync(path.join(root, 'dist'), { recursive: true, force: true });
const started = Date.now();
const result = await build({
  entryPoints: [path.join(root, 'src/main.ts')],
  outfile: path.join(root, 'dist/main.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external,
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
});
const bytes = Object.values(result.metafile.outputs).reduce((sum, out) => sum + out.bytes, 0);
console.log(
  `dist/main.js: ${(bytes / 1024).toFixed(0)} KiB with its source map, in ${Date.now() - started} ms`,
);
