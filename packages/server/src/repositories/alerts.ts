import type { Knex } from 'knex';

export interface AlertRow {
  id: string;
  user_id: string;
  kind: 'mass_change';
  at: number;
  last_at: number;
  restore_at: number;
  /** The actor (JSON) as history keeps it; `actor_key` is that text, to find its events by. */
  actor: string;
  actor_key: string;
  app_password_id: string | null;
  files: number;
  folder_id: string | null;
  dismissed_at: number | null;
}

export class AlertsRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: AlertRow): Promise<void> {
    await this.db('alerts').insert(row);
  }

  async update(id: string, patch: Partial<AlertRow>): Promise<void> {
    await this.db('alerts').where({ id }).update(patch);
  }

  /** The actor's alert still open for a burst that went on after `since` (dismissed or not). */
  async latestFor(userId: string, actorKey: string, since: number): Promise<AlertRow | undefined> {
    return this.db<AlertRow>('alerts')
      .where({ user_id: userId, actor_key: actorKey })
      .andWhere('last_at', '>=', since)
      .orderBy('last_at', 'desc')
      .first();
  }

  async listOpen(userId: string): Promise<AlertRow[]> {
    return this.db<AlertRow>('alerts')
      .where({ user_id: userId })
      .whereNull('dismissed_at')
      .orderBy('at', 'desc')
      .limit(100);
  }

  async find(userId: string, id: string): Promise<AlertRow | undefined> {
    return this.db<AlertRow>('alerts').where({ user_id: userId, id }).first();
  }
}
