import type { RetainedVersion } from '../../repositories/file-versions.ts';
import type { Repositories } from '../../repositories/index.ts';
import type { UserLimits } from '../limits.ts';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

/**
 * How finely versions are kept, by age (how long ago newer content replaced them): every one for
 * a day, then the newest of each hour, of each day from 7 days, of each week from 30 days.
 * Buckets are whole hours, days and weeks since 1970 (UTC), so they nest: a day's newest is an
 * hour's newest, and a version kept at one step is the one the next step keeps.
 */
const TIERS: Array<{ from: number; bucket: number }> = [
  { from: 30 * DAY, bucket: WEEK },
  { from: 7 * DAY, bucket: DAY },
  { from: DAY, bucket: HOUR },
];

/** Files per look-up, and versions deleted per transaction. */
const PAGE = 100;

export interface RetentionOptions {
  /** DFS_VERSIONS_MAX_SHARE: the share of a user's quota their versions may cost (0–1). */
  maxShare: number;
  now: () => number;
}

export interface RetentionReport {
  /** Versions thinned out by age. */
  thinned: number;
  /** Versions that went because their user's versions cost more than the share of the quota. */
  capped: number;
  /** The run stopped at its budget with work left; the next run goes on from there. */
  more: boolean;
}

/**
 * The version ids thinning drops from one file's versions older than a day (newest first): the
 * newest of each bucket of its age tier stays, the others go. The tier is part of the bucket, so
 * versions on either side of a tier's edge never compete.
 */
export function thinned(versions: RetainedVersion[], now: number): string[] {
  const seen = new Set<string>();
  const drop: string[] = [];
  for (const version of versions) {
    const age = now - version.replaced_at;
    const tier = TIERS.find((t) => age >= t.from);
    if (!tier) continue;
    const bucket = `${tier.bucket}:${Math.floor(version.replaced_at / tier.bucket)}`;
    if (seen.has(bucket)) drop.push(version.id);
    else seen.add(bucket);
  }
  return drop;
}

/**
 * The version ids the cap drops from a user's costly versions (newest first: those whose content
 * no file has). Walking from the newest, each distinct content counts its size once; the version
 * whose content takes the sum past `cap` goes, and so does every older one — except those whose
 * content a newer, kept version already has (they cost nothing more).
 */
export function overCap(costly: RetainedVersion[], cap: number): string[] {
  const kept = new Set<string>();
  let bytes = 0;
  for (const [index, version] of costly.entries()) {
    if (kept.has(version.content_id)) continue;
    bytes += version.size;
    if (bytes > cap) {
      return costly.slice(index).flatMap((v) => (kept.has(v.content_id) ? [] : [v.id]));
    }
    kept.add(version.content_id);
  }
  return [];
}

/**
 * Keeps file versions bounded: thinning by age (`thinned`), then a per-user cap, the versions'
 * cost at most `maxShare` × the user's quota (`overCap`; no quota, no cap). A version costs
 * nothing when a file — any user's, live or trashed — has its content, and a content several of
 * a user's versions share is counted once. Versions never count toward the quota itself, so no
 * upload fails because of them: this cap is what bounds them. Each deleted version's content is
 * released for the collector when nothing else holds it.
 *
 * Work is bounded per run: it stops at the budget and the next run resumes after the last file
 * or user it finished (in this process; another instance starts over, which only repeats work).
 */
export class RetentionService {
  private phase: 'thin' | 'cap' = 'thin';
  /** The last file (thinning) or user (cap) fully done; the next look-up starts after it. */
  private after = '';
  private deadline = Number.POSITIVE_INFINITY;

  constructor(
    private readonly repos: Repositories,
    private readonly limits: UserLimits,
    private readonly options: RetentionOptions,
  ) {}

  /**
   * One pass (thinning, then the cap), or as much of it as fits in `budgetMs`. Each run does at
   * least one file, user or page of deletions, so it gets somewhere whatever its budget.
   */
  async run(budgetMs = Number.POSITIVE_INFINITY): Promise<RetentionReport> {
    this.deadline = performance.now() + budgetMs;
    const report: RetentionReport = { thinned: 0, capped: 0, more: false };
    for (;;) {
      const done = this.phase === 'thin' ? await this.thinPage(report) : await this.capPage(report);
      if (done) {
        this.after = '';
        if (this.phase === 'cap') {
          this.phase = 'thin';
          return report;
        }
        this.phase = 'cap';
      }
      if (this.outOfTime()) return { ...report, more: true };
    }
  }

  /** Thins the next page of files; answers whether that was the last (false: out of time too). */
  private async thinPage(report: RetentionReport): Promise<boolean> {
    const now = this.options.now();
    const fileIds = await this.repos.fileVersions.filesToThin(now - DAY, this.after, PAGE);
    const byFile = new Map<string, RetainedVersion[]>(fileIds.map((id) => [id, []]));
    for (const version of await this.repos.fileVersions.olderThan(fileIds, now - DAY)) {
      byFile.get(version.file_id)?.push(version);
    }
    for (const [fileId, versions] of byFile) {
      const drop = thinned(versions, now);
      if (drop.length > 0) {
        const deleted = await this.delete(versions[0]!.user_id, drop);
        report.thinned += deleted;
        if (deleted < drop.length) return false;
      }
      this.after = fileId;
      if (this.outOfTime()) return false;
    }
    return fileIds.length < PAGE;
  }

  /** Caps the next page of users; answers whether that was the last (false: out of time too). */
  private async capPage(report: RetentionReport): Promise<boolean> {
    const users = await this.repos.fileVersions.usersWithVersions(this.after, PAGE);
    for (const user of users) {
      const quota = this.limits.quotaOf(user);
      const cap = quota === null ? null : Math.floor(quota * this.options.maxShare);
      // The sum alone, most of the time: the list only when there is something to cut.
      if (cap !== null && (await this.repos.fileVersions.costOf(user.id)) > cap) {
        const drop = overCap(await this.repos.fileVersions.costly(user.id), cap);
        const deleted = await this.delete(user.id, drop);
        report.capped += deleted;
        if (deleted < drop.length) return false;
      }
      this.after = user.id;
      if (this.outOfTime()) return false;
    }
    return users.length < PAGE;
  }

  /**
   * Deletes a user's versions, a page per transaction, until done or out of time; answers how
   * many went. The user's row is locked first, as a version restore locks it before reading the
   * version: a restore and this never both act on one version, and the content either stays
   * referenced or gets its collector clock.
   */
  private async delete(userId: string, ids: string[]): Promise<number> {
    let deleted = 0;
    while (deleted < ids.length) {
      const page = ids.slice(deleted, deleted + PAGE);
      await this.repos.transaction(async (tx) => {
        await tx.users.findForUpdate(userId);
        const now = this.options.now();
        for (const contentId of await tx.fileVersions.deleteByIds(page)) {
          await tx.contents.refreshReference(contentId, now);
        }
      });
      deleted += page.length;
      if (this.outOfTime()) break;
    }
    return deleted;
  }

  private outOfTime(): boolean {
    return performance.now() > this.deadline;
  }
}
