import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';

/**
 * What an upgrade fixture (test/fixtures/upgrade/<release>/) holds, as `dataset.json` states it.
 * The release made the data set through its own API, once on SQLite and once on MariaDB; the
 * ids, tokens and app passwords differ per run, the names and bytes do not.
 */
export interface UpgradeDataset {
  release: string;
  commit: string;
  /** The node's root in the dumps, which a test replaces with its own directory. */
  nodeRootPlaceholder: string;
  /** The release's upload chunk size when the data set was made (the big file spans chunks). */
  chunkSize: number;
  users: Array<{ username: string; password: string; isAdmin: boolean }>;
  group: string;
  /** Every file that lists: its owner, its path from that owner's root, and its current bytes. */
  files: Array<{ owner: string; path: string; seed: string; size: number; sha1: string }>;
  /** An overwritten file: its contents, oldest first (the last is current). */
  versioned: { owner: string; path: string; versions: Array<{ seed: string; size: number; sha1: string }> };
  trashed: { owner: string; name: string; seed: string; size: number; sha1: string };
  /** A password-protected link to one of `files`. */
  link: { owner: string; path: string; password: string };
  /** A folder of `shareOwner`'s shared with a user and with the group (whose member is `groupMember`). */
  memberShare: { owner: string; folder: string; user: string; groupMember: string; role: string };
  /** The node's objects: where each sits under the node's root, and the seed that remakes its bytes. */
  objects: Array<{ key: string; seed: string; size: number; sha1: string }>;
  runs: Record<'sqlite' | 'mariadb', UpgradeRun>;
}

export interface UpgradeRun {
  /** `migrations` rows the release had run, newest last. */
  migrations: string[];
  userIds: Record<string, string>;
  /** An app password per user, in clear (test data). */
  appPasswords: Record<string, string>;
  /** File and folder ids by `owner:path`. */
  ids: Record<string, string>;
  linkToken: string;
}

/**
 * Deterministic bytes for a seed: SHA-256 of `seed:counter` blocks, cut to `size`. The fixture
 * keeps seeds instead of the node's objects, so the repository stays small.
 */
export function seededBytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let at = 0, i = 0; at < size; at += 32, i++) {
    createHash('sha256').update(`${seed}:${i}`).digest().copy(out, at);
  }
  return out;
}

export const RELEASE_FIXTURE = fileURLToPath(new URL('../fixtures/upgrade/0.3.0/', import.meta.url));

export async function readDataset(): Promise<UpgradeDataset> {
  return JSON.parse(await readFile(path.join(RELEASE_FIXTURE, 'dataset.json'), 'utf8'));
}

/**
 * Loads the release's dump (the one of this suite's database) into the empty database at `url`,
 * its node's root named `nodeRoot`.
 */
export async function loadReleaseDump(url: string, nodeRoot: string): Promise<void> {
  const { nodeRootPlaceholder } = await readDataset();
  const mysqlUrl = url.startsWith('mysql://');
  const dump = (await readFile(path.join(RELEASE_FIXTURE, mysqlUrl ? 'mariadb.sql' : 'sqlite.sql'), 'utf8'))
    .split(nodeRootPlaceholder)
    .join(nodeRoot);
  if (mysqlUrl) {
    const conn = await mysql.createConnection({ uri: url, multipleStatements: true });
    try {
      await conn.query(dump);
    } finally {
      await conn.end();
    }
  } else {
    const db = new Database(decodeURIComponent(url.slice('sqlite://'.length)));
    try {
      db.exec(dump);
    } finally {
      db.close();
    }
  }
}
