import type { FastifyBaseLogger } from 'fastify';
import { isUniqueViolation } from '../../db/knex.ts';
import type { HistoryAction } from '../../repositories/history.ts';
import type { Repositories } from '../../repositories/index.ts';
import type { Actor } from '../actor.ts';
import { newId } from '../ids.ts';
import type { AuditRecorder } from '../operations/audit.ts';

/** The changes a burst is made of (creating files is how a sync starts, not a threat). */
export const MASS_CHANGE_ACTIONS: HistoryAction[] = ['replaced', 'renamed', 'moved', 'trashed'];
/** Enough of a burst's events to name its folder and count its files. */
const BURST_ROWS = 50_000;

export interface MassChangeOptions {
  files: number;
  windowMs: number;
  /** How long after a change its actor's recent changes are counted (a burst is counted once per pause). */
  delayMs?: number;
}

/**
 * Notices one actor changing many files in a short time — a sync client gone wrong, ransomware
 * behind an app password — and raises one alert per burst for the owner, with the moment just
 * before it to restore to. It never blocks the actor: a big legitimate sync must not fail.
 * Counting reads the history table, so changes made through several app instances add up.
 */
export class MassChangeGuard {
  private readonly pending = new Map<string, { userId: string; actor: Actor; json: string }>();
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> = Promise.resolve();

  constructor(
    private readonly repos: Repositories,
    private readonly now: () => number,
    private readonly log: FastifyBaseLogger,
    private readonly options: MassChangeOptions,
    private readonly audit?: AuditRecorder,
  ) {}

  /** FileService tells of every change it records (in its transaction: counted a little later). */
  readonly note = (userId: string, action: HistoryAction, actor: Actor, json: string): void => {
    if (!MASS_CHANGE_ACTIONS.includes(action) || actor.type === 'system' || actor.via === 'restore') return;
    this.pending.set(`${userId}\n${json}`, { userId, actor, json });
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, this.options.delayMs ?? 300);
    this.timer.unref();
  };

  /** Counts what is pending now (all users', or one's: before listing their alerts). */
  flush(userId?: string): Promise<void> {
    const due = [...this.pending].filter(([, p]) => userId === undefined || p.userId === userId);
    for (const [key] of due) this.pending.delete(key);
    this.checking = this.checking.then(async () => {
      for (const [, p] of due) {
        await this.check(p.userId, p.actor, p.json).catch((error: unknown) =>
          this.log.error({ err: error }, 'mass-change check failed'),
        );
      }
    });
    return this.checking;
  }

  private async check(userId: string, actor: Actor, json: string): Promise<void> {
    const now = this.now();
    const open = await this.repos.alerts.latestFor(userId, json, now - this.options.windowMs);
    const since = open ? Number(open.at) : now - this.options.windowMs;
    const events = await this.repos.history.burst(
      userId,
      { type: actor.type, json },
      since,
      MASS_CHANGE_ACTIONS,
      BURST_ROWS,
    );
    const files = new Set(events.map((e) => e.file_id));
    if (!open && files.size <= this.options.files) return;
    const first = events[0];
    if (!first) return;
    const last = Number(events.at(-1)!.at);
    const folderId = commonFolder(events, files);
    if (open) {
      await this.repos.alerts.update(open.id, {
        last_at: Math.max(last, Number(open.last_at)),
        files: files.size,
        folder_id: folderId,
      });
      return;
    }
    try {
      await this.repos.alerts.insert({
        id: newId(),
        user_id: userId,
        kind: 'mass_change',
        at: Number(first.at),
        last_at: last,
        restore_at: Number(first.at) - 1,
        actor: json,
        actor_key: json,
        app_password_id: actor.appPasswordId ?? null,
        files: files.size,
        folder_id: folderId,
        dismissed_at: null,
      });
      this.log.warn({ userId, actor, files: files.size }, 'mass change: the owner is alerted');
      // Raised by dfs, outside the requests that made the burst: no actor, no address.
      await this.audit?.record({
        action: 'mass_change.alert',
        actor: null,
        client: { userAgent: null, address: null },
        target: { type: 'user', id: userId },
        details: {
          files: files.size,
          folderId,
          by: actor.username ?? actor.name,
          actorType: actor.type,
          via: actor.via,
          ...(actor.appPasswordId ? { appPasswordId: actor.appPasswordId } : {}),
        },
      });
    } catch (error) {
      // Another instance raised it first: that one is the burst's alert.
      if (!isUniqueViolation(error)) throw error;
    }
  }
}

/**
 * The deepest folder every change of the burst was in (before or after it), the changed entries
 * themselves left out; null when only the root holds them all. History keeps each event's folders
 * top down, so the last common one in the first event's list is the deepest.
 */
function commonFolder(events: Array<{ ancestors: string }>, changed: Set<string>): string | null {
  const first = events[0]!.ancestors.split(',').filter(Boolean);
  let common = new Set(first.filter((id) => !changed.has(id)));
  for (const event of events) {
    if (common.size === 0) return null;
    const ids = new Set(event.ancestors.split(',').filter(Boolean));
    common = new Set([...common].filter((id) => ids.has(id)));
  }
  return first.filter((id) => common.has(id)).at(-1) ?? null;
}
