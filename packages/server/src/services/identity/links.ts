import { HttpError } from '../../errors.ts';
import type { IdentityRow } from '../../repositories/identities.ts';
import type { Repositories } from '../../repositories/index.ts';

/** An account's links to the OpenID provider and the directory, for its administrators. */
export async function listLinks(repos: Repositories, userId: string): Promise<IdentityRow[]> {
  if (!(await repos.users.findById(userId))) throw new HttpError('not_found', 'user not found');
  return repos.identities.listByUser(userId);
}

/** Unlinks: that identity no longer signs in as the user (its next sign-in is a new person's). */
export async function unlink(repos: Repositories, userId: string, identityId: string): Promise<void> {
  if (!(await repos.identities.delete(userId, identityId))) throw new HttpError('not_found', 'no such link');
}
