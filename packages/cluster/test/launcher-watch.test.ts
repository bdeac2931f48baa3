import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../../..');
const FIXTURE = path.join(import.meta.dirname, 'fixtures/watched.ts');

/**
 * A signal to `pnpm cluster`'s own pid — not to its process group, as Ctrl-C sends — must stop the
 * cluster. pnpm passes SIGINT and SIGTERM only to its direct child, and dies of SIGHUP without
 * passing it on; the cluster's process sees each.
 */
describe('a signal to the pid of `pnpm <script>` reaches the process the script execs', () => {
  let dir: string;
  let script: string;

  beforeAll(async () => {
    const root = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8'));
    // The shell that runs the script must exec, or pnpm's signals stop at the shell.
    expect(root.scripts.cluster).toBe('exec bash scripts/cluster.sh');
    expect(await readFile(path.join(REPO, 'scripts/cluster.sh'), 'utf8')).toMatch(
      /\nexec node --import tsx packages\/cluster\/src\/main\.ts\n/,
    );
    dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-signals-'));
    script = `cd ${JSON.stringify(REPO)} && exec node --import tsx ${JSON.stringify(FIXTURE)}`;
    await writeFile(
      path.join(dir, 'package.json'),
      JSON.stringify({ name: 'signals', scripts: { go: script } }),
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`stops after ${signal} to pnpm's pid`, async () => {
      const pnpm = spawn('pnpm', ['--silent', 'go'], {
        cwd: dir,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const lines: { pid?: number; why?: string }[] = [];
      let buffered = '';
      pnpm.stdout!.on('data', (d: Buffer) => {
        buffered += d.toString();
        for (let at = buffered.indexOf('\n'); at >= 0; at = buffered.indexOf('\n')) {
          const line = buffered.slice(0, at);
          buffered = buffered.slice(at + 1);
          if (line.startsWith('{')) lines.push(JSON.parse(line));
        }
      });
      const until = async (test: () => boolean) => {
        const deadline = Date.now() + 20_000;
        while (!test()) {
          if (Date.now() > deadline) throw new Error(`timed out; saw ${JSON.stringify(lines)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      try {
        await until(() => lines.length > 0);
        const child = lines[0]!.pid!;
        process.kill(pnpm.pid!, signal);
        await until(() => lines.length > 1);
        expect(lines[1]!.why).toMatch(signal === 'SIGHUP' ? /launcher \(pid \d+\) exited/ : signal);
        await until(() => {
          try {
            process.kill(child, 0);
            return false;
          } catch {
            return true;
          }
        });
      } finally {
        try {
          process.kill(-pnpm.pid!, 'SIGKILL');
        } catch {
          // the whole group is gone already
        }
      }
    });
  }
});
