import type { Alert } from '@dfs/shared';
import { notFound } from '../../errors.ts';
import type { AlertRow } from '../../repositories/alerts.ts';
import type { Repositories } from '../../repositories/index.ts';
import { actorOf, SYSTEM_ACTOR } from '../actor.ts';
import type { FileService } from '../files.ts';
import type { MassChangeGuard } from './mass-change.ts';

const iso = (ms: number | string) => new Date(Number(ms)).toISOString();

/** The owner's side of the mass-change guard: the alerts, undoing a burst, dismissing one. */
export class AlertService {
  constructor(
    private readonly repos: Repositories,
    private readonly files: FileService,
    private readonly guard: MassChangeGuard,
    private readonly now: () => number,
  ) {}

  async list(userId: string): Promise<Alert[]> {
    // Changes this instance saw a moment ago are counted before answering.
    await this.guard.flush(userId);
    const rows = await this.repos.alerts.listOpen(userId);
    return Promise.all(rows.map((row) => this.toAlert(row)));
  }

  async find(userId: string, id: string): Promise<AlertRow> {
    const row = await this.repos.alerts.find(userId, id);
    if (!row || row.dismissed_at !== null) throw notFound('alert not found');
    return row;
  }

  /**
   * Undoing restores the burst's folder to just before it, through `restore` (which answers a
   * result or a job); the alert is closed once that restore has succeeded, so a job that fails
   * leaves it to try again.
   */
  async undo<T>(
    userId: string,
    id: string,
    restore: (folderId: string | null, at: number, succeeded: () => Promise<void>) => Promise<T>,
  ): Promise<T> {
    const row = await this.find(userId, id);
    const folder = row.folder_id ? await this.repos.files.find(userId, row.folder_id, 'active') : undefined;
    // The folder itself gone since: the whole account, which holds wherever it went.
    return restore(folder ? folder.id : null, Number(row.restore_at), () =>
      this.repos.alerts.update(row.id, { dismissed_at: this.now() }),
    );
  }

  async dismiss(userId: string, id: string): Promise<void> {
    const row = await this.find(userId, id);
    await this.repos.alerts.update(row.id, { dismissed_at: this.now() });
  }

  private async toAlert(row: AlertRow): Promise<Alert> {
    let folderPath = '/';
    if (row.folder_id) {
      try {
        folderPath = `/${(await this.files.path(row.user_id, row.folder_id)).map((e) => e.name).join('/')}`;
      } catch {
        folderPath = '/';
      }
    }
    return {
      id: row.id,
      kind: 'mass_change',
      at: iso(row.at),
      lastAt: iso(row.last_at),
      actor: actorOf(row.actor) ?? SYSTEM_ACTOR,
      files: Number(row.files),
      folderId: row.folder_id,
      folderPath,
      restoreAt: iso(row.restore_at),
    };
  }
}
