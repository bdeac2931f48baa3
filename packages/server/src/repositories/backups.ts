import type { Knex } from 'knex';

export interface BackupRow {
  id: string;
  taken_at: number;
  finished_at: number | null;
  dir: string;
  kind: 'manual' | 'scheduled';
  db_kind: 'sqlite' | 'mysql';
  status: 'running' | 'complete' | 'failed' | 'pruned';
  contents: number | null;
  bytes: number | null;
  error: string | null;
}

const numeric = (row: BackupRow): BackupRow => ({
  ...row,
  taken_at: Number(row.taken_at),
  finished_at: row.finished_at === null ? null : Number(row.finished_at),
  contents: row.contents === null ? null : Number(row.contents),
  bytes: row.bytes === null ? null : Number(row.bytes),
});

/** The backups taken of this database (the collector's keep rule reads them too). */
export class BackupsRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: BackupRow): Promise<void> {
    await this.db('backups').insert(row);
  }

  async finish(
    id: string,
    result: {
      status: 'complete' | 'failed';
      finishedAt: number;
      dir?: string;
      contents?: number;
      bytes?: number;
      error?: string;
    },
  ): Promise<void> {
    await this.db('backups')
      .where({ id })
      .update({
        status: result.status,
        finished_at: result.finishedAt,
        ...(result.dir === undefined ? {} : { dir: result.dir }),
        contents: result.contents ?? null,
        bytes: result.bytes ?? null,
        error: result.error?.slice(0, 4000) ?? null,
      });
  }

  async get(id: string): Promise<BackupRow | undefined> {
    const row = await this.db<BackupRow>('backups').where({ id }).first();
    return row && numeric(row);
  }

  /** Newest first. */
  async list(limit = 100): Promise<BackupRow[]> {
    const rows = await this.db<BackupRow>('backups').orderBy('taken_at', 'desc').limit(limit);
    return rows.map(numeric);
  }

  /** Complete scheduled backups taken before `before`: the ones the schedule removes. */
  async listScheduledBefore(before: number): Promise<BackupRow[]> {
    const rows = await this.db<BackupRow>('backups')
      .where({ kind: 'scheduled', status: 'complete' })
      .andWhere('taken_at', '<', before)
      .orderBy('taken_at');
    return rows.map(numeric);
  }

  async markPruned(id: string): Promise<void> {
    await this.db('backups').where({ id }).update({ status: 'pruned' });
  }

  /**
   * A run that never finished (its process died) stops counting as running once it is older
   * than any backup takes: it would otherwise keep every content unreferenced since.
   */
  async failStale(startedBefore: number, now: number): Promise<number> {
    return this.db('backups')
      .where({ status: 'running' })
      .andWhere('taken_at', '<', startedBefore)
      .update({ status: 'failed', finished_at: now, error: 'did not finish' });
  }
}
