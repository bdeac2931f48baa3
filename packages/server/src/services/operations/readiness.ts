import type { Knex } from 'knex';
import type { StorageCluster } from '../cluster.ts';
import { migrationStatus } from './migrations.ts';

export type NotReadyReason =
  | { code: 'database'; message: string }
  | { code: 'migrations_pending'; message: string; migrations: string[] }
  | { code: 'nodes'; message: string; live: number; required: number; configured: number; replicas: number };

export interface Readiness {
  ready: boolean;
  reasons: NotReadyReason[];
  liveNodes: number;
}

/**
 * A probe times out after a few seconds (deploy/k8s: 5 s); a database that does not answer by
 * then is reported as such rather than leaving the probe hanging on the pool.
 */
const DB_DEADLINE_MS = 2_000;

function withDeadline<T>(work: PromiseLike<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([Promise.resolve(work), deadline]).finally(() => clearTimeout(timer));
}

/** While migrations are pending, how often a probe reads the database's list again. */
const PENDING_RECHECK_MS = 5_000;

/**
 * What `/readyz` answers. It is polled every few seconds by every orchestrator and balancer, so
 * it costs one trivial query: node liveness comes from the heartbeats already running, and the
 * migrations are read once (the app has just run them at start) and again only while some are
 * pending, until `dfs admin migrate` or another instance has run them.
 */
export class ReadinessCheck {
  private pending: string[] | null = null;
  private checkedAt = 0;

  constructor(
    private readonly db: Knex,
    private readonly cluster: StorageCluster,
    private readonly options: { replicas: number; now: () => number },
  ) {}

  async check(): Promise<Readiness> {
    const reasons: NotReadyReason[] = [];
    let reachable = true;
    try {
      await withDeadline(this.db.raw('SELECT 1'), DB_DEADLINE_MS);
    } catch (error) {
      reachable = false;
      reasons.push({ code: 'database', message: `database unreachable: ${(error as Error).message}` });
    }
    if (reachable) {
      const pending = await this.pendingMigrations().catch(() => null);
      if (pending && pending.length > 0) {
        reasons.push({
          code: 'migrations_pending',
          message: `${pending.length} migration(s) pending: run \`dfs admin migrate\` or restart one instance`,
          migrations: pending,
        });
      }
    }
    const view = this.cluster.view(0);
    const configured = view.memberIds.length - view.drainingIds.length;
    const live = this.cluster.liveCount();
    // With fewer nodes than DFS_REPLICAS configured, every one of them is what "enough" means.
    const required = Math.max(1, Math.min(this.options.replicas, configured));
    if (live < required) {
      reasons.push({
        code: 'nodes',
        message: `${live} of ${required} storage node(s) needed for DFS_REPLICAS=${this.options.replicas} are up`,
        live,
        required,
        configured,
        replicas: this.options.replicas,
      });
    }
    return { ready: reasons.length === 0, reasons, liveNodes: live };
  }

  /** Forgets the cached list, so the next probe reads it (after this process migrated). */
  invalidate(): void {
    this.pending = null;
  }

  private async pendingMigrations(): Promise<string[]> {
    const now = this.options.now();
    if (this.pending === null || (this.pending.length > 0 && now - this.checkedAt >= PENDING_RECHECK_MS)) {
      this.pending = (await migrationStatus(this.db)).pending;
      this.checkedAt = now;
    }
    return this.pending;
  }
}
