import type { FastifyBaseLogger } from 'fastify';
import type { Repositories } from '../repositories/index.ts';
import { newId } from '../services/ids.ts';

export interface Job {
  name: string;
  everyMs: number;
  /**
   * Also run this long after start when no instance has run the job for `everyMs`: an interval
   * timer alone never fires in an instance restarted more often than the interval.
   */
  firstRunAfterMs?: number;
  /** Runs on every instance, without the lease: the job handles this instance's own state. */
  everyInstance?: boolean;
  /** 'more': the run stopped at its time budget with work left, so the next one starts at once. */
  run(): Promise<unknown>;
}

/**
 * Runs background jobs on intervals. Each run first claims the job's lease in the database, so
 * when several app instances share one database exactly one of them runs a given job at a time.
 */
export class JobRunner {
  private readonly owner = newId();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Set<Promise<void>>();
  private stopped = false;
  private started = false;

  constructor(
    private readonly repos: Repositories,
    private readonly log: FastifyBaseLogger,
    private readonly now: () => number,
  ) {}

  start(jobs: Job[]): void {
    this.started = true;
    for (const job of jobs) {
      const timer = setInterval(() => void this.runOnce(job), job.everyMs);
      timer.unref();
      this.timers.push(timer);
      if (job.firstRunAfterMs !== undefined) {
        const first = setTimeout(() => void this.runIfDue(job), job.firstRunAfterMs);
        first.unref();
        this.timers.push(first);
      }
    }
  }

  /** Runs `job` unless some instance finished a run of it within its interval; returns whether it ran. */
  runIfDue(job: Job): Promise<boolean> {
    return this.runOnce(job, this.now() - job.everyMs);
  }

  /**
   * Runs `job` now if this instance can take its lease (a job that runs on every instance needs
   * none); returns whether it ran.
   */
  async runOnce(job: Job, notRunSince?: number): Promise<boolean> {
    if (this.stopped) return false;
    const leased = !job.everyInstance;
    if (leased) {
      const leaseMs = Math.max(60_000, job.everyMs * 2);
      const claimed = await this.repos.jobs
        .claim(job.name, this.owner, this.now(), leaseMs, notRunSince)
        .catch(() => false);
      if (!claimed) return false;
    }
    let more = false;
    const run = (async () => {
      try {
        more = (await job.run()) === 'more';
      } catch (error) {
        this.log.error({ err: error, job: job.name }, 'background job failed');
      } finally {
        if (leased) await this.repos.jobs.release(job.name, this.owner, this.now()).catch(() => undefined);
      }
    })();
    this.running.add(run);
    await run;
    this.running.delete(run);
    if (more) this.kick(job);
    return true;
  }

  /** Runs `job` soon, outside its interval, when this runner runs jobs at all (not in tests). */
  kick(job: Job): void {
    if (!this.started || this.stopped) return;
    setTimeout(() => void this.runOnce(job), 50).unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    await Promise.allSettled(this.running);
  }
}
