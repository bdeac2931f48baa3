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

const watchedFetch: typeof fetch = async (input, init) => {
  const res = await globalThis.fetch(input, init);
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  // Auth routes answer 401 for a wrong password too; that is not a lost session.
  if (res.status === 401 && !url.includes('/api/auth/') && !url.includes('/api/public/')) {
    for (const l of unauthorizedListeners) l();
  }
  return res;
};

/** The one API client of the app: same origin, the HttpOnly session cookie does the auth. */
export const api = new DfsApi({ baseUrl: '', credentials: 'same-origin', fetch: watchedFetch });
