import { type FileHandle, open } from 'node:fs/promises';
import { sqliteFileOf } from './knex.ts';

/**
 * Makes SQLite's committed transactions durable before a response says so, off the event loop.
 *
 * better-sqlite3 runs every statement on the main thread, so `synchronous = FULL` (an fsync of the
 * WAL inside each COMMIT) stalled every request behind every other one's disk flush: a third of
 * the many-users rate. With `synchronous = NORMAL` a COMMIT only writes its WAL frames to the OS,
 * which a process crash cannot lose but a power cut can; fsyncing the WAL file from the thread
 * pool before a write's response goes out closes that gap. Requests that finish together share
 * one fsync (group commit): one that starts while a sync runs waits for the next one, since the
 * running one may have begun before its commit.
 */
export class WalSync {
  private handle: Promise<FileHandle | null> | null = null;
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  /** fsyncs made (tests check that requests share them). */
  syncs = 0;

  constructor(private readonly walPath: string) {}

  sync(): Promise<void> {
    if (!this.running) {
      this.running = this.flush().finally(() => {
        this.running = null;
      });
      return this.running;
    }
    this.next ??= this.running.then(() => {
      this.next = null;
      return this.sync();
    });
    return this.next;
  }

  private async flush(): Promise<void> {
    // The WAL appears with the first write and stays while the connection is open (it is reset,
    // not removed, at checkpoints), so one descriptor serves for the app's life.
    this.handle ??= open(this.walPath, 'r').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    const handle = await this.handle;
    if (!handle) {
      this.handle = null;
      return;
    }
    this.syncs++;
    await handle.sync();
  }

  async close(): Promise<void> {
    await this.running?.catch(() => {});
    await (await this.handle?.catch(() => null))?.close();
    this.handle = null;
  }
}

/** The WAL file of a `sqlite://` database URL; null for other databases. */
export function walPathOf(url: string): string | null {
  if (!url.startsWith('sqlite://')) return null;
  return `${sqliteFileOf(url)}-wal`;
}
