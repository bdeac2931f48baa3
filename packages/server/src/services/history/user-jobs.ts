import type { RestoreResult, UserJob } from '@dfs/shared';
import type { FastifyBaseLogger } from 'fastify';
import { notFound } from '../../errors.ts';
import type { Repositories } from '../../repositories/index.ts';
import type { UserJobRow } from '../../repositories/user-jobs.ts';
import { newId } from '../ids.ts';

/** A running job writes its progress at least this often; silent for 4× longer, it died with its instance. */
const HEARTBEAT_MS = 5_000;
const STALE_MS = 4 * HEARTBEAT_MS;

const iso = (ms: number | string) => new Date(Number(ms)).toISOString();

/**
 * Work a user started that takes longer than a request should (a large restore): it runs in this
 * instance, and its progress and outcome are rows any instance can answer `GET /api/jobs/:id` from.
 */
export class UserJobs {
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly repos: Repositories,
    private readonly now: () => number,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Starts `work` in the background; answers the job's id at once. */
  async start(
    userId: string,
    kind: UserJob['kind'],
    work: (progress: (done: number, total: number) => Promise<void>) => Promise<RestoreResult>,
  ): Promise<string> {
    const id = newId();
    const now = this.now();
    await this.repos.userJobs.insert({
      id,
      user_id: userId,
      kind,
      state: 'running',
      done: 0,
      total: 0,
      result: null,
      error: null,
      created_at: now,
      updated_at: now,
    });
    let written = 0;
    const progress = async (done: number, total: number) => {
      // Often enough to show movement and prove the job alive, not a write per step.
      if (done < total && this.now() - written < 500) return;
      written = this.now();
      await this.repos.userJobs.update(id, { done, total, updated_at: written });
    };
    const beat = setInterval(
      () => void this.repos.userJobs.update(id, { updated_at: this.now() }).catch(() => {}),
      HEARTBEAT_MS,
    );
    beat.unref();
    const run = work(progress)
      .then(async (result) => {
        await this.repos.userJobs.update(id, {
          state: 'done',
          result: JSON.stringify(result),
          updated_at: this.now(),
        });
      })
      .catch(async (error: unknown) => {
        this.log.error({ err: error, job: id, kind }, 'user job failed');
        await this.repos.userJobs
          .update(id, {
            state: 'failed',
            error: error instanceof Error ? error.message : String(error),
            updated_at: this.now(),
          })
          .catch(() => {});
      })
      .finally(() => {
        clearInterval(beat);
        this.running.delete(run);
      });
    this.running.add(run);
    return id;
  }

  async get(userId: string, id: string): Promise<UserJob> {
    const row = await this.repos.userJobs.find(userId, id);
    if (!row) throw notFound('job not found');
    return toJob(row, this.now());
  }

  /** Waits for this instance's jobs (shutdown, tests). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }
}

function toJob(row: UserJobRow, now: number): UserJob {
  const stale = row.state === 'running' && now - Number(row.updated_at) > STALE_MS;
  return {
    id: row.id,
    kind: 'restore',
    state: stale ? 'failed' : row.state,
    progress: { done: Number(row.done), total: Number(row.total) },
    result: row.result ? (JSON.parse(row.result) as RestoreResult) : null,
    error: stale
      ? 'the instance running it stopped; start the restore again: it carries on from where things are'
      : row.error,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}
