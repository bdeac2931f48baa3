import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Cron } from 'croner';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../../../config.ts';
import type { Db } from '../../../db/knex.ts';
import type { Repositories } from '../../../repositories/index.ts';
import { newId } from '../../ids.ts';
import type { AuditRecorder } from '../audit.ts';
import { type BackupResult, takeBackup } from './take.ts';

const JOB = 'backup';
/** A run holds the job's lease this long at most (a dead instance's lease then expires). */
const LEASE_MS = 6 * 3600_000;
/** A backup still `running` after this was left by a process that died. */
const STALE_MS = 24 * 3600_000;

export interface BackupScheduleDeps {
  db: Db;
  repos: Repositories;
  config: Pick<Config, 'dbUrl' | 'dataDir' | 'secret' | 'backup'>;
  log: FastifyBaseLogger;
  now: () => number;
  audit?: AuditRecorder;
}

/**
 * The scheduled backup (DFS_BACKUP_DIR, DFS_BACKUP_CRON): every app instance keeps the timer, and
 * the job's lease row (the job runner's, `job_leases`) lets exactly one of them take each run;
 * a run counts as taken when one finished within half the time between two runs, so instances
 * whose clocks or timers are a little apart do not take the same run twice. After a run, scheduled
 * backups older than DFS_BACKUP_KEEP_DAYS are removed.
 */
export class BackupSchedule {
  private cron: Cron | null = null;
  private readonly owner = newId();
  private running: Promise<unknown> | null = null;

  constructor(private readonly deps: BackupScheduleDeps) {}

  start(): void {
    if (!this.deps.config.backup.dir || this.cron) return;
    this.cron = new Cron(this.deps.config.backup.cron, { protect: true }, async () => {
      this.running = this.runOnce().catch(() => undefined);
      await this.running;
    });
  }

  async stop(): Promise<void> {
    this.cron?.stop();
    this.cron = null;
    await this.running;
  }

  /**
   * One scheduled run, when this instance gets it: the backup, then the pruning. Null when another
   * instance has the run (or no backup folder is set). A failed backup is logged and recorded in
   * the audit log, its row marked failed, and rethrown.
   */
  async runOnce(): Promise<BackupResult | null> {
    const { config, repos, log, now } = this.deps;
    const dir = config.backup.dir;
    if (!dir) return null;
    const claimed = await repos.jobs.claim(JOB, this.owner, now(), LEASE_MS, now() - this.minGapMs());
    if (!claimed) return null;
    try {
      let result: BackupResult;
      try {
        result = await takeBackup({
          config,
          db: this.deps.db,
          dir,
          kind: 'scheduled',
          now,
          progress: (line) => log.debug({ job: JOB }, line),
        });
      } catch (error) {
        log.error({ err: error, dir }, 'scheduled backup failed');
        await this.deps.audit?.record({
          action: 'backup.failed',
          actor: null,
          details: { dir, error: (error as Error).message.slice(0, 500) },
        });
        throw error;
      }
      log.info({ dir: result.dir, contents: result.contents, bytes: result.bytes }, 'scheduled backup taken');
      await this.deps.audit?.record({
        action: 'backup.created',
        actor: null,
        target: { type: 'backup', id: result.id },
        details: { dir: result.dir, contents: result.contents, bytes: result.bytes, scheduled: true },
      });
      await this.prune(dir).catch((err) => log.warn({ err }, 'could not prune old backups'));
      return result;
    } finally {
      await repos.jobs.release(JOB, this.owner, now()).catch(() => undefined);
    }
  }

  /** Removes scheduled backups older than the keep period, and tmp folders runs left behind. */
  async prune(dir: string): Promise<number> {
    const { repos, config, now, log } = this.deps;
    await repos.backups.failStale(now() - STALE_MS, now());
    let removed = 0;
    for (const backup of await repos.backups.listScheduledBefore(now() - config.backup.keepMs)) {
      // Only folders of this backup folder: a row never sends a delete elsewhere.
      if (path.dirname(backup.dir) !== path.resolve(dir)) continue;
      await rm(backup.dir, { recursive: true, force: true });
      await repos.backups.markPruned(backup.id);
      removed++;
      log.info({ dir: backup.dir }, 'removed an old scheduled backup');
    }
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!name.startsWith('.tmp-')) continue;
      const info = await stat(path.join(dir, name)).catch(() => null);
      if (info && Date.now() - info.mtimeMs > STALE_MS)
        await rm(path.join(dir, name), { recursive: true, force: true });
    }
    return removed;
  }

  /** Half the time between two scheduled runs (at least a second). */
  private minGapMs(): number {
    const probe = new Cron(this.deps.config.backup.cron, { paused: true });
    try {
      const [a, b] = probe.nextRuns(2);
      return a && b ? Math.max(1000, (b.getTime() - a.getTime()) / 2) : 1000;
    } finally {
      probe.stop();
    }
  }
}
