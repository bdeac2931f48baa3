import { isUniqueViolation } from '../../db/knex.ts';
import type { GroupSource } from '../../repositories/groups.ts';
import type { Repositories } from '../../repositories/index.ts';
import { newId } from '../ids.ts';

/** As long as a group name may be (the column's size). */
const MAX_GROUP_NAME = 100;

/**
 * Makes a user's memberships from `source` (an identity provider's claim, a directory's groups)
 * exactly the groups named, creating the missing ones with that source. Memberships an admin
 * gave stay. Names that cannot be group names are skipped, not fatal: one odd group at the
 * provider must not keep its members out.
 */
export async function syncGroups(
  repos: Repositories,
  source: GroupSource,
  userId: string,
  names: string[],
  now: number,
): Promise<void> {
  const wanted = [...new Set(names.map((name) => name.trim()))].filter(
    (name) => name.length > 0 && name.length <= MAX_GROUP_NAME,
  );
  const ids: string[] = [];
  for (const name of wanted) ids.push(await groupId(repos, source, name, now));
  await repos.transaction((tx) => tx.groups.setMembershipsFrom(source, userId, ids, now));
}

async function groupId(repos: Repositories, source: GroupSource, name: string, now: number): Promise<string> {
  const found = await repos.groups.findByName(name);
  if (found) return found.id;
  const id = newId();
  try {
    await repos.groups.insert({ id, name, source, created_at: now });
    return id;
  } catch (error) {
    // Another sign-in created it a moment ago.
    const raced = isUniqueViolation(error) ? await repos.groups.findByName(name) : undefined;
    if (!raced) throw error;
    return raced.id;
  }
}
