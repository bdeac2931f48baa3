/**
 * Makes the upgrade test's fixture of a past release (test/fixtures/upgrade/<release>/) with that
 * release's own code: a git worktree of its commit, its locked dependencies installed offline, its
 * server started from its sources, first on SQLite and then on a throwaway MariaDB. Through its
 * HTTP API it gets the same data set each time (users and an admin, folders, files of a few sizes,
 * one spanning chunks, an overwrite with its version, a trashed file, a password link, a folder
 * shared with a user and a group, app passwords); then the script writes:
 *
 *   sqlite.sql     `sqlite3 dfs.sqlite .dump`
 *   mariadb.sql    `mariadb-dump --skip-extended-insert` (one row a line, readable diffs)
 *   secret         the data directory's secret (it peppers the password hashes)
 *   dataset.json   what the data set holds (test/support/upgrade-fixture.ts): names, seeds and
 *                  SHA-1s, and per database the ids, the link's token and the app passwords in clear
 *
 * The node's objects are not kept: their bytes come back from the seeds in dataset.json (the
 * script checks that they do), at the keys the release stored them under. The node's root in the
 * dumps is replaced by a placeholder the test swaps for its own directory.
 *
 * Usage, from the repository root (needs git, pnpm's store for an offline install, sqlite3,
 * mariadbd and mariadb-dump):
 *
 *   pnpm exec tsx packages/server/scripts/make-upgrade-fixture.ts [<commit> <release>]
 *
 * (default: b6638d0 0.3.0). The worktree is removed afterwards.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startMariaDb } from '@dfs/cluster/mariadb';
import { freePort } from '@dfs/cluster/ports';
import mysql from 'mysql2/promise';
import { seededBytes, type UpgradeDataset, type UpgradeRun } from '../test/support/upgrade-fixture.ts';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const [commit = 'b6638d0', release = '0.3.0'] = process.argv.slice(2);
const OUT = path.join(ROOT, 'packages/server/test/fixtures/upgrade', release);
const PLACEHOLDER = '@NODE_ROOT@';
const CHUNK_SIZE = 64 * 1024;
const sha1 = (data: Buffer) => createHash('sha1').update(data).digest('hex');

const USERS = [
  { username: 'alice', password: 'alice-upgrade-pass-1', isAdmin: true },
  { username: 'bob', password: 'bob-upgrade-pass-2', isAdmin: false },
  { username: 'carol', password: 'carol-upgrade-pass-3', isAdmin: false },
];
const GROUP = 'team';
const file = (owner: string, filePath: string, seed: string, size: number) => ({
  owner,
  path: filePath,
  seed,
  size,
  sha1: sha1(seededBytes(seed, size)),
});
// Sizes: empty, a few bytes, several chunks, and more than one 1 MiB block (two block digests).
const FILES = [
  file('alice', 'Documents/notes.txt', 'notes', 13),
  file('alice', 'Documents/report.bin', 'report', 3 * CHUNK_SIZE + 1234),
  file('alice', 'Photos/big.bin', 'big', 1024 * 1024 + 4321),
  file('alice', 'empty.txt', 'empty', 0),
  file('bob', 'bob.txt', 'bob', 100),
];
const VERSIONS = [
  file('alice', 'Documents/plan.txt', 'plan-1', 40),
  file('alice', 'Documents/plan.txt', 'plan-2', 50),
];
const TRASHED = file('alice', 'trashed.txt', 'trashed', 77);

class Api {
  constructor(readonly base: string) {}
  async call(method: string, url: string, token: string | null, body?: unknown, expect = [200, 201, 204]) {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    let payload: BodyInit | undefined;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const res = await fetch(`${this.base}${url}`, { method, headers, body: payload });
    const text = await res.text();
    if (!expect.includes(res.status)) throw new Error(`${method} ${url}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : {};
  }
}

async function makeDataset(api: Api): Promise<Omit<UpgradeRun, 'migrations'>> {
  const tokens: Record<string, string> = {};
  const userIds: Record<string, string> = {};
  const appPasswords: Record<string, string> = {};
  const ids: Record<string, string> = {};
  for (const user of USERS) {
    await api.call('POST', '/api/auth/signup', null, { username: user.username, password: user.password });
    const signin = await api.call('POST', '/api/auth/signin', null, {
      username: user.username,
      password: user.password,
    });
    tokens[user.username] = signin.token;
    userIds[user.username] = signin.user.id;
    const created = await api.call('POST', '/api/auth/app-passwords', signin.token, { name: 'sync' });
    appPasswords[user.username] = created.secret;
  }
  const folder = async (owner: string, folderPath: string): Promise<string | undefined> => {
    if (!folderPath) return undefined;
    const key = `${owner}:${folderPath}`;
    if (!ids[key]) {
      const parentId = await folder(owner, path.posix.dirname(folderPath).replace(/^\.$/, ''));
      const made = await api.call('POST', '/api/folders', tokens[owner]!, {
        name: path.posix.basename(folderPath),
        ...(parentId ? { parentId } : {}),
      });
      ids[key] = made.file.id;
    }
    return ids[key];
  };
  const upload = async (f: (typeof FILES)[number], onConflict?: 'replace') => {
    const parentId = await folder(f.owner, path.posix.dirname(f.path).replace(/^\.$/, ''));
    const bytes = seededBytes(f.seed, f.size);
    const token = tokens[f.owner]!;
    let id: string;
    if (f.size <= CHUNK_SIZE) {
      const form = new FormData();
      if (parentId) form.append('parentId', parentId);
      if (onConflict) form.append('onConflict', onConflict);
      form.append('file', new Blob([new Uint8Array(bytes)]), path.posix.basename(f.path));
      id = (await api.call('POST', '/api/files', token, form)).file.id;
    } else {
      // The chunked path, so the big files' contents were assembled from chunks by that release.
      const opened = await api.call('POST', '/api/uploads', token, {
        name: path.posix.basename(f.path),
        size: f.size,
        sha1: f.sha1,
        ...(parentId ? { parentId } : {}),
      });
      if (opened.chunkCount < 2 && f.size > CHUNK_SIZE) throw new Error('expected several chunks');
      for (let i = 0; i < opened.chunkCount; i++) {
        const chunk = bytes.subarray(i * opened.chunkSize, (i + 1) * opened.chunkSize);
        const res = await fetch(`${api.base}/api/uploads/${opened.uploadId}/chunks/${i}`, {
          method: 'PUT',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/octet-stream',
            'content-md5': createHash('md5').update(chunk).digest('base64'),
          },
          body: new Uint8Array(chunk),
        });
        if (res.status !== 204) throw new Error(`chunk ${i}: ${res.status} ${await res.text()}`);
      }
      id = (await api.call('POST', `/api/uploads/${opened.uploadId}/complete`, token, {})).file.id;
    }
    ids[`${f.owner}:${f.path}`] = id;
    return id;
  };
  for (const f of FILES) await upload(f);
  await upload(VERSIONS[0]!);
  await upload(VERSIONS[1]!, 'replace');
  const trashedId = await upload(TRASHED);
  await api.call('DELETE', `/api/files/${trashedId}`, tokens.alice!);

  const link = await api.call(
    'POST',
    `/api/files/${ids['alice:Documents/report.bin']}/shares`,
    tokens.alice!,
    {
      password: 'link-password-0.3.0',
    },
  );
  const group = await api.call('POST', '/api/admin/groups', tokens.alice!, { name: GROUP });
  await api.call('POST', `/api/admin/groups/${group.group.id}/members`, tokens.alice!, { username: 'carol' });
  const shared = ids['alice:Documents']!;
  await api.call('POST', `/api/files/${shared}/members`, tokens.alice!, { username: 'bob', role: 'viewer' });
  await api.call('POST', `/api/files/${shared}/members`, tokens.alice!, { group: GROUP, role: 'viewer' });
  return { userIds, appPasswords, ids, linkToken: link.share.token };
}

async function startRelease(
  worktree: string,
  env: Record<string, string>,
): Promise<{ api: Api; stop(): Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    path.join(worktree, 'node_modules/.bin/tsx'),
    [path.join(worktree, 'packages/server/src/main.ts')],
    {
      cwd: worktree,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? tmpdir(),
        DFS_PORT: String(port),
        DFS_LOG_LEVEL: 'warn',
        DFS_CHUNK_SIZE: String(CHUNK_SIZE),
        DFS_MIN_FREE_BYTES: '0',
        ...env,
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const api = new Api(`http://127.0.0.1:${port}`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the release's server exited (${child.exitCode})`);
    try {
      if ((await fetch(`${api.base}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("the release's server did not become ready");
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    api,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Every object under a local node's root, with its bytes' SHA-1 (scratch directories skipped). */
async function nodeObjects(root: string): Promise<Array<{ key: string; sha1: string; size: number }>> {
  const out: Array<{ key: string; sha1: string; size: number }> = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(path.join(root, dir), { withFileTypes: true })) {
      const key = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!entry.name.startsWith('.')) await walk(key);
      } else {
        const bytes = await readFile(path.join(root, key));
        out.push({ key, sha1: sha1(bytes), size: bytes.length });
      }
    }
  };
  await walk('');
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

function withPlaceholder(dump: string, nodeRoot: string): string {
  if (!dump.includes(nodeRoot)) throw new Error(`the dump does not name the node root ${nodeRoot}`);
  return dump.split(nodeRoot).join(PLACEHOLDER);
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(tmpdir(), `dfs-upgrade-${release}-`));
  const worktree = path.join(work, 'release');
  await run('git', ['worktree', 'add', '--detach', worktree, commit], { cwd: ROOT });
  try {
    process.stderr.write(`installing ${commit}'s dependencies…\n`);
    await run('pnpm', ['install', '--frozen-lockfile', '--offline'], { cwd: worktree });
    const { stdout: fullCommit } = await run('git', ['rev-parse', commit], { cwd: ROOT });
    const secret = randomBytes(32).toString('base64url');
    await mkdir(OUT, { recursive: true });
    const runs: Partial<Record<'sqlite' | 'mariadb', UpgradeRun>> = {};
    const objectsSeen: string[] = [];

    const runOn = async (kind: 'sqlite' | 'mariadb', dbUrl: (dataDir: string) => string) => {
      const dataDir = path.join(work, kind);
      await mkdir(dataDir, { recursive: true });
      await writeFile(path.join(dataDir, 'secret'), `${secret}\n`, { mode: 0o600 });
      const server = await startRelease(worktree, { DFS_DATA_DIR: dataDir, DFS_DB_URL: dbUrl(dataDir) });
      let made: Omit<UpgradeRun, 'migrations'>;
      try {
        process.stderr.write(`making the data set on ${kind}…\n`);
        made = await makeDataset(server.api);
      } finally {
        await server.stop();
      }
      const objects = await nodeObjects(path.join(dataDir, 'nodes', 'local'));
      objectsSeen.push(JSON.stringify(objects));
      return { dataDir, made, objects };
    };

    // SQLite
    const sqlite = await runOn('sqlite', (dataDir) => `sqlite://${path.join(dataDir, 'dfs.sqlite')}`);
    const sqliteFile = path.join(sqlite.dataDir, 'dfs.sqlite');
    const { stdout: sqliteDump } = await run('sqlite3', [sqliteFile, '.dump'], { maxBuffer: 64 << 20 });
    await writeFile(
      path.join(OUT, 'sqlite.sql'),
      withPlaceholder(sqliteDump, path.join(sqlite.dataDir, 'nodes', 'local')),
    );
    const { stdout: sqliteMigrations } = await run('sqlite3', [
      sqliteFile,
      'SELECT name FROM knex_migrations ORDER BY id',
    ]);
    runs.sqlite = { migrations: sqliteMigrations.trim().split('\n'), ...sqlite.made };

    // MariaDB
    const maria = await startMariaDb({ parentDir: work });
    try {
      const conn = await mysql.createConnection(maria.url);
      await conn.query('CREATE DATABASE dfs CHARACTER SET utf8mb4');
      await conn.end();
      const mariadb = await runOn('mariadb', () => `${maria.url}/dfs`);
      const url = new URL(maria.url);
      const { stdout: mariaDump } = await run(
        'mariadb-dump',
        [
          `--host=${url.hostname}`,
          `--port=${url.port}`,
          `--user=${decodeURIComponent(url.username)}`,
          `--password=${decodeURIComponent(url.password)}`,
          '--skip-extended-insert',
          '--skip-dump-date',
          '--single-transaction',
          'dfs',
        ],
        { maxBuffer: 64 << 20 },
      );
      await writeFile(
        path.join(OUT, 'mariadb.sql'),
        withPlaceholder(mariaDump, path.join(mariadb.dataDir, 'nodes', 'local')),
      );
      const db = await mysql.createConnection(`${maria.url}/dfs`);
      const [rows] = (await db.query('SELECT name FROM knex_migrations ORDER BY id')) as unknown as [
        Array<{ name: string }>,
      ];
      await db.end();
      runs.mariadb = { migrations: rows.map((row) => row.name), ...mariadb.made };
    } finally {
      await maria.stop();
    }

    if (objectsSeen[0] !== objectsSeen[1]) throw new Error('the two runs stored different objects');
    const seeds = new Map(
      [...FILES, ...VERSIONS, TRASHED].map((f) => [f.sha1, { seed: f.seed, size: f.size }] as const),
    );
    const objects = sqlite.objects.map((object) => {
      const from = seeds.get(object.sha1);
      if (!from) throw new Error(`object ${object.key} is none of the data set's files`);
      return { key: object.key, ...from, sha1: object.sha1 };
    });
    const dataset: UpgradeDataset = {
      release,
      commit: fullCommit.trim(),
      nodeRootPlaceholder: PLACEHOLDER,
      chunkSize: CHUNK_SIZE,
      users: USERS,
      group: GROUP,
      files: FILES,
      versioned: {
        owner: 'alice',
        path: 'Documents/plan.txt',
        versions: VERSIONS.map(({ seed, size, sha1 }) => ({ seed, size, sha1 })),
      },
      trashed: {
        owner: 'alice',
        name: 'trashed.txt',
        seed: TRASHED.seed,
        size: TRASHED.size,
        sha1: TRASHED.sha1,
      },
      link: { owner: 'alice', path: 'Documents/report.bin', password: 'link-password-0.3.0' },
      memberShare: { owner: 'alice', folder: 'Documents', user: 'bob', groupMember: 'carol', role: 'viewer' },
      objects,
      runs: runs as UpgradeDataset['runs'],
    };
    await writeFile(path.join(OUT, 'dataset.json'), `${JSON.stringify(dataset, null, 2)}\n`);
    await writeFile(path.join(OUT, 'secret'), `${secret}\n`);
    const sizes = await Promise.all(
      ['sqlite.sql', 'mariadb.sql'].map(
        async (name) => `${name} ${(await stat(path.join(OUT, name))).size} B`,
      ),
    );
    process.stderr.write(
      `wrote ${path.relative(ROOT, OUT)}: ${sizes.join(', ')}, ${objects.length} objects\n`,
    );
  } finally {
    await run('git', ['worktree', 'remove', '--force', worktree], { cwd: ROOT }).catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
}

await main();
