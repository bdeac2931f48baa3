import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { AppInstance } from '../../src/app.ts';

/** The sync client's own files in a synced folder: its journal and logs, never synced. */
const CLIENT_FILES = /^(\.sync_[0-9a-f]+\.db(-wal|-shm)?|\.(nextcloud|owncloud)sync\.log)$/;

export async function fileSha1(file: string): Promise<string> {
  const hash = createHash('sha1');
  for await (const piece of createReadStream(file)) hash.update(piece as Buffer);
  return hash.digest('hex');
}

/** A local tree as `relative/path → SHA-1` (folders as `path/ → ''`), the client's files left out. */
export async function localTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string, prefix: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (prefix === '' && CLIENT_FILES.test(entry.name)) continue;
      const rel = `${prefix}${entry.name}`;
      if (entry.isDirectory()) {
        out.set(`${rel}/`, '');
        await walk(path.join(dir, entry.name), `${rel}/`);
      } else out.set(rel, await fileSha1(path.join(dir, entry.name)));
    }
  };
  await walk(root, '');
  return out;
}

export interface ServerEntry {
  id: string;
  kind: 'file' | 'folder';
  sha1: string | null;
  mtime: string;
}

/** A user's live tree through the API, as `path → entry` (folders end in `/`). */
export async function serverTree(
  app: AppInstance,
  headers: Record<string, string>,
): Promise<Map<string, ServerEntry>> {
  const out = new Map<string, ServerEntry>();
  const walk = async (parentId: string | null, prefix: string) => {
    for (let offset = 0; ; offset += 500) {
      const res = await app.inject({
        url: `/api/files?limit=500&offset=${offset}${parentId ? `&parentId=${parentId}` : ''}`,
        headers,
      });
      const page = res.json() as { items: Array<ServerEntry & { name: string }>; total: number };
      for (const item of page.items) {
        const rel = `${prefix}${item.name}${item.kind === 'folder' ? '/' : ''}`;
        out.set(rel, { id: item.id, kind: item.kind, sha1: item.sha1, mtime: item.mtime });
        if (item.kind === 'folder') await walk(item.id, rel);
      }
      if (offset + 500 >= page.total) break;
    }
  };
  await walk(null, '');
  return out;
}

/** `serverTree` as `path → SHA-1`, comparable with `localTree`. */
export async function serverHashes(
  app: AppInstance,
  headers: Record<string, string>,
): Promise<Map<string, string>> {
  const tree = await serverTree(app, headers);
  return new Map([...tree].map(([p, e]) => [p, e.sha1 ?? '']));
}

/** Sorted `[path, sha1]` pairs: a readable diff when two trees differ. */
export const entries = (tree: Map<string, string>) =>
  [...tree].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
