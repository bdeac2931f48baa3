import type { FileSource } from '../hashing/types.ts';

/** What the client remembers about an unfinished upload, to resume without re-hashing. */
export interface ResumeEntry {
  /** Null while a speculative upload (sent while hashing) has no hash yet. */
  sha1: string | null;
  /** The server's upload session, recorded right after it is created. */
  uploadId: string | null;
  size: number;
  name: string;
  /** ms since the epoch of the last write (lets a store expire old entries). */
  savedAt?: number;
}

/**
 * A small cache keyed by `fingerprint(source)`. The web app implements it with IndexedDB; the
 * authority on what was received stays the server (GET /api/uploads/:id).
 */
export interface ResumeStore {
  get(fingerprint: string): Promise<ResumeEntry | null | undefined>;
  set(fingerprint: string, entry: ResumeEntry): Promise<void>;
  delete(fingerprint: string): Promise<void>;
}

/** name + size + lastModified: cheap, and a wrong guess is caught by the server's SHA-1 check. */
export function fingerprint(source: Pick<FileSource, 'name' | 'size' | 'lastModified'>): string {
  return `dfs1:${source.size}:${source.lastModified ?? ''}:${source.name}`;
}

/** An in-memory `ResumeStore` (tests, CLI runs). */
export class MemoryResumeStore implements ResumeStore {
  readonly entries = new Map<string, ResumeEntry>();
  async get(fp: string) {
    return this.entries.get(fp) ?? null;
  }
  async set(fp: string, entry: ResumeEntry) {
    this.entries.set(fp, { ...entry });
  }
  async delete(fp: string) {
    this.entries.delete(fp);
  }
}
