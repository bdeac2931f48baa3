import type { Config } from '../config.ts';
import type { Repositories } from '../repositories/index.ts';
import { RetentionService } from '../services/history/retention.ts';
import type { UserLimits } from '../services/limits.ts';
import type { Job } from './runner.ts';

export interface VersionsJobDeps {
  repos: Repositories;
  limits: UserLimits;
  now: () => number;
  config: Pick<Config, 'versionsMaxShare' | 'versionsEveryMs'>;
}

/** Well inside the shortest lease JobRunner takes (a minute). */
const VERSIONS_BUDGET_MS = 30_000;

/** Thins old file versions and holds each user's to their share of the quota (services/history/retention.ts). */
export function versionsJob(deps: VersionsJobDeps): Job {
  const retention = new RetentionService(deps.repos, deps.limits, {
    maxShare: deps.config.versionsMaxShare,
    now: deps.now,
  });
  return {
    name: 'versions',
    everyMs: deps.config.versionsEveryMs,
    run: async () => ((await retention.run(VERSIONS_BUDGET_MS)).more ? 'more' : undefined),
  };
}
