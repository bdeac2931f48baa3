import { DfsApi } from '@dfs/client';

type UnauthorizedListener = () => void;
const unauthorizedListeners = new Set<UnauthorizedListener>();

/**
 * Lets the auth store hear about a session that ended on the server (expired, revoked in another
 * tab) from any request, so the user lands on the sign-in page instead of a wall of errors.
 */
export function onUnauthorized(listener: UnauthorizedListener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

const setupListeners = new Set<UnauthorizedListener>();

/**
 * DFS_REQUIRE_2FA: the server holds a session without a second factor back (`403
 * second_factor_setup_required`) until one is set up; the router sends the user to do that.
 */
export function onSecondFactorSetupRequired(listener: UnauthorizedListener): () => void {
  setupListeners.add(listener);
  return () => setupListeners.delete(listener);
}

const watchedFetch: typeof fetch = async (input, init) => {
  const res = await globalThis.fetch(input, init);
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  // Auth routes answer 401 for a wrong password too; that is not a lost session.
  if (res.status === 401 && !url.includes('/api/auth/') && !url.includes('/api/public/')) {
    for (const l of unauthorizedListeners) l();
  }
  if (res.status === 403 && setupListeners.size > 0) {
    const body = (await res
      .clone()
      .json()
      .catch(() => null)) as { error?: { code?: unknown } } | null;
    if (body?.error?.code === 'second_factor_setup_required') for (const l of setupListeners) l();
  }
  return res;
};

/** The one API client of the app: same origin, the HttpOnly session cookie does the auth. */
export const api = new DfsApi({ baseUrl: '', credentials: 'same-origin', fetch: watchedFetch });
