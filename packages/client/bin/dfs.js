#!/usr/bin/env node
// The package's `dfs` command. The bundle it runs (dist/cli.js) exists only after a build, and a
// bin that points at a missing file makes every fresh install warn; this file is always there.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(bundle)) {
  process.stderr.write('dfs: the command is not built yet: run `pnpm --filter @dfs/client build`\n');
  process.exit(1);
}
await import(bundle.href);
