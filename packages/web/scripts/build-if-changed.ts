import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * `pnpm start` runs this: the web app is built once, and again only when what goes into it
 * changed. A Vite build takes most of a start (tens of seconds); a hash of the inputs takes a few
 * milliseconds. The inputs are the web app's own files and the workspace packages it bundles
 * (client, shared), and the lockfile (dependency versions); tests and build output are not.
 */
const WEB = path.resolve(import.meta.dirname, '..');
const REPO = path.resolve(WEB, '../..');
const STAMP = path.join(WEB, 'dist', '.sources-sha1');
const INPUTS = ['packages/web', 'packages/client/src', 'packages/shared/src', 'pnpm-lock.yaml'];
const SKIPPED = new Set(['node_modules', 'dist', 'test', '.vite']);

function* files(entry: string): Generator<string> {
  const full = path.join(REPO, entry);
  if (!existsSync(full)) return;
  if (!statSync(full).isDirectory()) {
    yield entry;
    return;
  }
  const children = readdirSync(full, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const child of children) {
    if (SKIPPED.has(child.name)) continue;
    const rel = path.join(entry, child.name);
    if (child.isDirectory()) yield* files(rel);
    else if (child.isFile()) yield rel;
  }
}

function sourcesHash(): string {
  const hash = createHash('sha1');
  for (const file of INPUTS.flatMap((entry) => [...files(entry)])) {
    hash.update(`${file}\0`);
    hash.update(readFileSync(path.join(REPO, file)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

const current = sourcesHash();
const built =
  existsSync(path.join(WEB, 'dist', 'index.html')) && existsSync(STAMP)
    ? readFileSync(STAMP, 'utf8').trim()
    : '';
if (built === current && process.env.DFS_WEB_REBUILD !== '1') {
  console.log('web app: up to date (packages/web/dist), not rebuilt');
} else {
  execFileSync('pnpm', ['exec', 'vite', 'build'], { cwd: WEB, stdio: 'inherit' });
  writeFileSync(STAMP, `${current}\n`);
}
