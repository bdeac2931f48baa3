import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ReplicaTracker } from '../db/read-replica.ts';
import { HttpError } from '../errors.ts';
import type { Repositories } from '../repositories/index.ts';

export type ReadSource = 'primary' | 'replica';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * false: this route changes nothing the replica-routed reads show (a chunk PUT writes upload
     * state only), so it does not stamp the user's last write: no extra UPDATE per chunk.
     */
    affectsReads?: boolean;
  }
}

/**
 * Where a read that may be slightly stale goes: the replica when it is up, within the lag bound,
 * and (for a signed-in user) already past that user's last write; the primary otherwise.
 */
export class ReadRouting {
  constructor(
    readonly primary: Repositories,
    private readonly replica: { repos: Repositories; tracker: ReplicaTracker } | null,
  ) {}

  get enabled(): boolean {
    return this.replica !== null;
  }

  choose(lastWriteAt: number | null): { repos: Repositories; source: ReadSource } {
    if (this.replica?.tracker.usableFor(lastWriteAt)) return { repos: this.replica.repos, source: 'replica' };
    return { repos: this.primary, source: 'primary' };
  }

  reportReplicaFailure(): void {
    this.replica?.tracker.reportFailure();
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * With a replica, every request that may have written something stamps the user's row before
 * its response leaves (so a read the client sends after seeing the response knows of the write),
 * and `withReads` tells which database served a read in `Server-Timing` (`db;desc=replica`).
 */
export function registerReadRouting(app: FastifyInstance, routing: ReadRouting, now: () => number): void {
  if (!routing.enabled) return;
  app.addHook('onSend', async (request) => {
    if (!request.auth || SAFE_METHODS.has(request.method)) return;
    if (request.routeOptions.config?.affectsReads === false) return;
    try {
      await routing.primary.users.markWrite(request.auth.user.id, now());
    } catch (err) {
      // The write itself is done; only the freshness of this user's next reads is at stake.
      request.log.warn({ err }, 'could not note the write for read-your-writes');
    }
  });
}

/**
 * Runs a stale-tolerant read on the database `routing` picks for this request. A replica that
 * fails the read (down, say, between two polls) is set aside and the read runs on the primary,
 * so a dying replica costs a retry, never an error.
 */
export async function withReads<T>(
  routing: ReadRouting,
  request: FastifyRequest,
  reply: FastifyReply,
  read: (repos: Repositories) => Promise<T>,
): Promise<T> {
  if (!routing.enabled) return read(routing.primary);
  const { repos, source } = routing.choose(request.auth?.lastWriteAt ?? null);
  reply.header('Server-Timing', `db;desc="${source}"`);
  if (source === 'primary') return read(repos);
  try {
    return await read(repos);
  } catch (error) {
    if (error instanceof HttpError) throw error;
    request.log.warn({ err: error }, 'read replica failed a read; retrying on the primary');
    routing.reportReplicaFailure();
    reply.header('Server-Timing', 'db;desc="primary"');
    return read(routing.primary);
  }
}
