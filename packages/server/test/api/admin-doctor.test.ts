import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doctor } from '../../src/admin/commands/doctor.ts';
import type { AdminIo } from '../../src/admin/commands/io.ts';
import { testDatabaseUrl } from '../support/db.ts';

/** `dfs admin doctor`: a line per check, FAIL with what to do, exit 1 when anything failed. */
let dir: string;
let dbUrl: string;
let drop: () => Promise<void>;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-doctor-'));
  const database = await testDatabaseUrl({ migrated: true });
  dbUrl = database.url;
  drop = database.drop;
  // A migrated SQLite database exists once an app opened it; the template covers MariaDB.
  if (dbUrl.startsWith('sqlite://')) {
    const { createDb, migrate } = await import('../../src/db/knex.ts');
    const db = createDb(dbUrl);
    await migrate(db);
    await db.destroy();
  }
});

afterAll(async () => {
  await drop?.();
  await rm(dir, { recursive: true, force: true });
});

async function run(env: Record<string, string>) {
  let out = '';
  const io: AdminIo = {
    env: { DFS_DATA_DIR: dir, DFS_DB_URL: dbUrl, DFS_MIN_FREE_BYTES: '0', ...env },
    out: (text) => {
      out += text;
    },
    err: () => {},
  };
  const code = await doctor([], io);
  return { code, out, lines: out.split('\n').filter((line) => /^(ok|warn|FAIL)/.test(line)) };
}

describe('dfs admin doctor', () => {
  it('passes a working deployment, and leaves nothing on its nodes', async () => {
    const nodes = [path.join(dir, 'n1'), path.join(dir, 'n2')];
    const { code, out, lines } = await run({
      DFS_NODES: nodes.map((node) => `local://${node}`).join(','),
      DFS_ACCEL_REDIRECT: `/_n1/=local://${nodes[0]}`,
    });
    expect(out).not.toContain('FAIL');
    expect(code).toBe(0);
    expect(lines.map((line) => line.split(':')[0])).toEqual([
      'ok    config',
      'ok    database',
      'ok    clock',
      'ok    migrations',
      `ok    node local`,
      `ok    node local`,
      'ok    replicas',
      'ok    accel',
    ]);
    expect(out).toMatch(/database: .* answers: (SQLite \d|.*MariaDB|\d+\.\d+)/);
    const objects = await readdir(path.join(nodes[0]!, 'objects'), { recursive: true, withFileTypes: true });
    expect(objects.filter((entry) => entry.isFile())).toEqual([]);
  });

  it('fails a node whose directory cannot be made, says what to do, and goes on', async () => {
    const blocked = path.join(dir, 'blocked');
    await writeFile(blocked, 'a file where the node directory should be');
    const good = path.join(dir, 'good');
    await mkdir(good, { recursive: true });
    const { code, out } = await run({ DFS_NODES: `local://${path.join(blocked, 'node')},local://${good}` });
    expect(code).toBe(1);
    expect(out).toMatch(
      new RegExp(
        `FAIL  node local://${path.join(blocked, 'node')}: .+\\n      → check that the node answers`,
      ),
    );
    expect(out).toContain(`ok    node local://${good}: reachable and writable`);
    expect(out).toMatch(/warn {2}replicas: 1 writable node\(s\) for DFS_REPLICAS=2/);
  });

  it('fails a database it cannot reach, and still checks the nodes', async () => {
    const { code, out } = await run({
      DFS_DB_URL: 'mysql://dfs:wrong@127.0.0.1:1/dfs',
      DFS_NODES: `local://${path.join(dir, 'n3')}`,
    });
    expect(code).toBe(1);
    expect(out).toMatch(
      /FAIL {2}database: mysql:\/\/dfs:\*\*\*@127\.0\.0\.1:1\/dfs: .*\n {6}→ check DFS_DB_URL/,
    );
    expect(out).not.toContain('wrong');
    expect(out).toContain('ok    node local://');
  });

  it('fails a configuration that does not parse', async () => {
    const { code, out } = await run({ DFS_REPLICAS: '0' });
    expect(code).toBe(1);
    expect(out).toMatch(/^FAIL {2}config: .*DFS_REPLICAS/);
  });
});
