/**
 * One ES module from a package's entry point, for plain `node`: the workspace packages (@dfs/*)
 * are bundled in; the package's npm dependencies stay external and load from its node_modules,
 * native addons included. Used by the server's and the CLI's build scripts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

export async function bundlePackage(options: {
  packageRoot: string;
  entry: string;
  outfile: string;
  banner?: string;
  sourcemap?: boolean;
  /**
   * Modules reached only through `import()` go to their own files (chunks/ beside the outfile),
   * loaded when first imported — with the npm packages they import — instead of at start.
   */
  splitting?: boolean;
}): Promise<number> {
  const pkg = JSON.parse(readFileSync(path.join(options.packageRoot, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  const external = Object.keys(pkg.dependencies)
    .filter((name) => !name.startsWith('@dfs/'))
    .flatMap((name) => [name, `${name}/*`]);
  const result = await build({
    entryPoints: [path.join(options.packageRoot, options.entry)],
    ...(options.splitting
      ? {
          outdir: path.dirname(options.outfile),
          entryNames: path.basename(options.outfile, '.js'),
          chunkNames: 'chunks/[name]-[hash]',
          splitting: true,
        }
      : { outfile: options.outfile }),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external,
    sourcemap: options.sourcemap ?? false,
    metafile: true,
    logLevel: 'warning',
    ...(options.banner ? { banner: { js: options.banner } } : {}),
  });
  return Object.values(result.metafile.outputs).reduce((sum, out) => sum + out.bytes, 0);
}
