import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The dfs checkout this module runs from: the directory with pnpm-workspace.yaml above it, whether
 * it runs from src/ (tsx) or bundled into packages/server/dist/main.js. Undefined outside one
 * (an installation without the workspace file).
 */
export function checkoutRoot(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'pnpm-workspace.yaml'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Where `pnpm start` kept its data before the data directory stopped depending on the cwd. */
function legacyDataDir(root: string): string {
  return path.join(root, 'packages', 'server', 'data');
}

/**
 * The data directory when DFS_DATA_DIR is not set: `data/` in the checkout, wherever the server is
 * started from (`pnpm start` runs it from packages/server, `node packages/server/dist/main.js` from
 * the root: both must open the same database). A checkout whose data is still where earlier
 * versions of `pnpm start` put it keeps using it, so no one's files seem to vanish on an update.
 */
export function defaultDataDir(root = checkoutRoot()): string {
  if (!root) return path.resolve('data');
  const dir = path.join(root, 'data');
  const legacy = legacyDataDir(root);
  if (!existsSync(dir) && existsSync(path.join(legacy, 'dfs.sqlite'))) return legacy;
  return dir;
}

/** A line for the log when the data directory is the old default, saying how to move it. */
export function legacyDataDirNotice(dataDir: string, root = checkoutRoot()): string | undefined {
  if (!root || path.resolve(dataDir) !== legacyDataDir(root)) return undefined;
  return `the data directory is ${dataDir}, where earlier versions of \`pnpm start\` put it; stop dfs and move it to ${path.join(root, 'data')} (or set DFS_DATA_DIR to keep it here)`;
}
