import type { AuditAction, AuditEvent, AuditPage, AuditQuery } from '@dfs/shared';
import type { FastifyBaseLogger } from 'fastify';
import type { Knex } from 'knex';
import { HttpError } from '../../errors.ts';
import type { Job } from '../../jobs/runner.ts';
import { type AuditEventRow, type AuditFilter, AuditRepository } from '../../repositories/audit.ts';
import { clientColumns, type SessionClient } from '../../repositories/sessions.ts';
import { currentRequest, sessionClient } from '../actor.ts';

/** What happened; everything but the action has a default from the current request. */
export interface AuditInput {
  action: AuditAction;
  /**
   * Who acted. Absent: the signed-in user of the current request, else nobody (dfs itself).
   * A sign-in names the account it signed in (the request has none yet), a failed one the
   * username tried with a null id.
   */
  actor?: { id: string | null; username: string | null } | null;
  target?: { type: string; id: string };
  /** Small: a few fields that say what changed. */
  details?: Record<string, unknown>;
  /** The client; absent: the current request's (none outside a request). */
  client?: SessionClient;
}

/** The recorder other modules call: `audit.record({ action: 'backup.created', details })`. */
export type AuditRecorder = Pick<AuditLog, 'record'>;

/** Details beyond this are cut: the log is for who did what, not a copy of the data. */
const MAX_DETAILS_CHARS = 4_000;
const DEFAULT_PAGE = 100;
/** Rows an export or a retention pass reads or deletes at a time. */
const BATCH = 500;
/** Retention deletes at most this many batches a run; the next run starts at once for the rest. */
const PRUNE_BATCHES_PER_RUN = 40;

export interface AuditOptions {
  now: () => number;
  log: FastifyBaseLogger;
  /** DFS_AUDIT_RETENTION_DAYS in ms; 0 keeps every event. */
  retentionMs: number;
}

/**
 * The audit log: sign-ins, access changes, administration, restores and backups, with who and
 * from where. Recording never fails the action it records: a lost event is logged, not thrown.
 */
export class AuditLog implements AuditRecorder {
  private readonly repo: AuditRepository;

  constructor(
    db: Knex,
    private readonly options: AuditOptions,
  ) {
    this.repo = new AuditRepository(db);
  }

  async record(input: AuditInput): Promise<void> {
    try {
      const request = currentRequest();
      const actor =
        input.actor !== undefined
          ? input.actor
          : request?.auth
            ? { id: request.auth.user.id, username: request.auth.user.username }
            : null;
      const client = input.client ?? (request ? sessionClient(request) : { userAgent: null, address: null });
      let details = input.details ? JSON.stringify(input.details) : null;
      if (details !== null && details.length > MAX_DETAILS_CHARS) {
        details = JSON.stringify({ truncated: true });
      }
      await this.repo.insert({
        at: this.options.now(),
        actor_id: actor?.id ?? null,
        actor_username: actor?.username?.slice(0, 255) ?? null,
        action: input.action,
        target_type: input.target?.type ?? null,
        target_id: input.target?.id.slice(0, 255) ?? null,
        details,
        ...clientColumns(client),
      });
    } catch (err) {
      this.options.log.error({ err, action: input.action }, 'could not record an audit event');
    }
  }

  /** One page, newest first. */
  async page(query: AuditQuery): Promise<AuditPage> {
    const filter = filterOf(query);
    const rows = await this.repo.page(filter);
    const last = rows.at(-1);
    return {
      events: rows.map(toEvent),
      nextCursor: last && rows.length === filter.limit ? `${Number(last.at)}.${Number(last.id)}` : null,
    };
  }

  /** Every event the filters match, newest first, read a batch at a time (an export's stream). */
  async *all(query: Omit<AuditQuery, 'limit' | 'cursor'>): AsyncGenerator<AuditEvent> {
    const filter: AuditFilter = { ...filterOf({ ...query, cursor: undefined }), limit: BATCH };
    for (;;) {
      const rows = await this.repo.page(filter);
      for (const row of rows) yield toEvent(row);
      const last = rows.at(-1);
      if (!last || rows.length < BATCH) return;
      filter.before = { at: Number(last.at), id: Number(last.id) };
    }
  }

  /** Deletes events past the retention; 'more' when a run's share was not enough. */
  async prune(): Promise<'more' | undefined> {
    if (this.options.retentionMs <= 0) return undefined;
    const before = this.options.now() - this.options.retentionMs;
    for (let i = 0; i < PRUNE_BATCHES_PER_RUN; i++) {
      if ((await this.repo.deleteOlderThan(before, BATCH)) < BATCH) return undefined;
    }
    return 'more';
  }

  /** The retention job, for the job runner. */
  retentionJob(): Job {
    return { name: 'audit-retention', everyMs: 3600_000, firstRunAfterMs: 60_000, run: () => this.prune() };
  }
}

/**
 * Keeps each request at hand for services that record events, so the address and agent need not
 * be passed through every call.
 */
function timeOf(iso: string, name: string): number {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) throw new HttpError('bad_request', `${name} is not a date and time`);
  return at;
}

function filterOf(query: AuditQuery): AuditFilter {
  const from = query.from === undefined ? undefined : timeOf(query.from, 'from');
  const to = query.to === undefined ? undefined : timeOf(query.to, 'to');
  if (from !== undefined && to !== undefined && from > to) {
    throw new HttpError('bad_request', '`from` is after `to`');
  }
  let before: AuditFilter['before'];
  if (query.cursor !== undefined) {
    const [at, id] = query.cursor.split('.').map(Number);
    before = { at: at as number, id: id as number };
  }
  return {
    ...(query.user !== undefined ? { actorUsername: query.user.toLowerCase() } : {}),
    ...(query.action !== undefined ? { action: query.action } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
    ...(before ? { before } : {}),
    limit: query.limit ?? DEFAULT_PAGE,
  };
}

function toEvent(row: AuditEventRow): AuditEvent {
  let details: Record<string, unknown> = {};
  if (row.details) {
    try {
      details = JSON.parse(row.details) as Record<string, unknown>;
    } catch {
      details = {};
    }
  }
  return {
    id: String(row.id),
    at: new Date(Number(row.at)).toISOString(),
    actorId: row.actor_id,
    actorUsername: row.actor_username,
    action: row.action as AuditAction,
    targetType: row.target_type,
    targetId: row.target_id,
    address: row.address,
    userAgent: row.user_agent,
    details,
  };
}
