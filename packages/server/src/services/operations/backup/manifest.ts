import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';

/** Bumped when a backup folder's layout changes in a way an older `restore` cannot read. */
export const BACKUP_FORMAT = 1;

export const MANIFEST_FILE = 'manifest.json';
export const CONTENTS_FILE = 'contents.jsonl';
export const SQLITE_FILE = 'dfs.sqlite';
export const DUMP_FILE = 'dfs.sql';
export const SECRET_FILE = 'secret';

/**
 * `manifest.json`: what the folder holds. Written last, so a folder with one is complete (the
 * folder is also only renamed into place once complete).
 */
export interface BackupManifest {
  format: number;
  /** The last migration the snapshot had run: `restore` runs the ones after it. */
  schema: string;
  db: 'sqlite' | 'mysql';
  /** Epoch ms, recorded before the snapshot started. */
  takenAt: number;
  /** The row in the `backups` table of the database backed up. */
  id: string;
  /** `file`: the data directory's secret is in the folder; `env`: DFS_SECRET was set (not saved). */
  secret: 'file' | 'env';
  contents: number;
  bytes: number;
}

/** One line of `contents.jsonl`: a content the snapshot references, and where its bytes are. */
export interface ManifestContent {
  sha1: string;
  size: number;
  /** The root of its 1 MiB block table; null for a content stored before roots. */
  root: string | null;
  /** The whole-file SHA-256 of a content stored before roots; '' for newer ones. */
  sha256: string;
  replicas: Array<{ node: string; state: 'ok' | 'missing' | 'corrupt' }>;
}

export async function readManifest(dir: string): Promise<BackupManifest> {
  let text: string;
  try {
    text = await readFile(path.join(dir, MANIFEST_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`${dir} is not a dfs backup (no ${MANIFEST_FILE}; an unfinished one never gets it)`);
    }
    throw error;
  }
  const manifest = JSON.parse(text) as BackupManifest;
  if (manifest.format !== BACKUP_FORMAT) {
    throw new Error(
      `${dir} is a backup of format ${manifest.format}; this dfs reads format ${BACKUP_FORMAT}`,
    );
  }
  return manifest;
}

/** The manifest's contents one by one, never all in memory. */
export async function* readContents(dir: string): AsyncGenerator<ManifestContent> {
  const lines = createInterface({
    input: createReadStream(path.join(dir, CONTENTS_FILE)),
    crlfDelay: Infinity,
  });
  for await (const line of lines) {
    if (line.trim()) yield JSON.parse(line) as ManifestContent;
  }
}

/** `2026-12-07T16-01-55.123Z`: sorts by time and holds no `:` (not allowed everywhere). */
export function folderName(takenAt: number): string {
  return new Date(takenAt).toISOString().replace(/:/g, '-');
}

/** `2026-12-07 16.01.55`: a backup's time in a folder name a user reads. */
export function displayTime(takenAt: number): string {
  return new Date(takenAt).toISOString().slice(0, 19).replace('T', ' ').replace(/:/g, '.');
}
