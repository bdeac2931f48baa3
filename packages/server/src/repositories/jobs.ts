import type { Knex } from 'knex';

export class JobLeasesRepository {
  constructor(private readonly db: Knex) {}

  /**
   * Takes the lease on a job if it is free or expired (or already ours). One conditional UPDATE
   * decides, so two app instances never run the same job at once.
   */
  async claim(
    name: string,
    owner: string,
    now: number,
    leaseMs: number,
    /** Only when no instance finished a run of the job after this moment. */
    notRunSince?: number,
  ): Promise<boolean> {
    await this.db('job_leases').insert({ name, owner: null, lease_until: 0 }).onConflict('name').ignore();
    const query = this.db('job_leases')
      .where({ name })
      .andWhere((q) => q.where('lease_until', '<=', now).orWhere({ owner }));
    if (notRunSince !== undefined) {
      query.andWhere((q) => q.whereNull('last_run_at').orWhere('last_run_at', '<=', notRunSince));
    }
    const n = await query.update({ owner, lease_until: now + leaseMs });
    return n === 1;
  }

  async release(name: string, owner: string, now: number): Promise<void> {
    await this.db('job_leases').where({ name, owner }).update({ lease_until: 0, last_run_at: now });
  }
}
