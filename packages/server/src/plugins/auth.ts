import type { User } from '@dfs/shared';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../errors.ts';
import { rememberRequest, sessionClient, setRequestActor } from '../services/actor.ts';
import type { Authenticated, AuthService } from '../services/auth.ts';

export { sessionClient };

export const SESSION_COOKIE = 'dfs_session';

/** Who may call a route: anyone, any signed-in user (the default under /api), or admins. */
export type RouteAccess = 'public' | 'user' | 'admin';

declare module 'fastify' {
  interface FastifyRequest {
    auth: Authenticated | null;
  }
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}

/** `Authorization: Basic …` as username and password; null when absent or malformed. */
export function basicCredentials(request: FastifyRequest): { username: string; password: string } | null {
  const header = request.headers.authorization;
  if (!header?.startsWith('Basic ')) return null;
  const decoded = Buffer.from(header.slice('Basic '.length).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * WebDAV clients authenticate with HTTP Basic (username + app password), on /dav/ and on
 * Nextcloud's mounts under /remote.php/ only.
 */
const takesBasic = (url: string) =>
  url === '/dav' || url.startsWith('/dav/') || url.startsWith('/remote.php/');

function tokenOf(request: FastifyRequest): { token: string; cookie: boolean } | null {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) {
    const token = header.slice('Bearer '.length).trim();
    return token ? { token, cookie: false } : null;
  }
  const cookie = request.cookies[SESSION_COOKIE];
  return cookie ? { token: cookie, cookie: true } : null;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Whether a browser sent this request from a page of another origin. `Sec-Fetch-Site` says so
 * directly; older browsers send `Origin` on unsafe requests. SameSite=Lax is not enough: another
 * origin of the same site (a sibling subdomain, or 127.0.0.1 beside localhost) still gets the
 * cookie sent along.
 */
export function isCrossOrigin(request: FastifyRequest, publicUrl: string | null): boolean {
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string') return site !== 'same-origin' && site !== 'none';
  const origin = request.headers.origin;
  if (typeof origin !== 'string') return false;
  const own = [`${request.protocol}://${request.host}`];
  if (publicUrl) own.push(new URL(publicUrl).origin);
  return !own.includes(origin);
}

/**
 * A route's access: what its `config.access` says, else `user` for every /api route, so that a
 * new route is never public by accident. Pages of the web app, health checks, CORS preflights
 * and unknown URLs (a JSON 404) are public.
 */
function accessOf(request: FastifyRequest): RouteAccess {
  const declared = request.routeOptions.config?.access;
  if (declared) return declared;
  if (request.method === 'OPTIONS' || request.is404) return 'public';
  return request.url.startsWith('/api/') ? 'user' : 'public';
}

/**
 * What a caller held back by DFS_REQUIRE_2FA may still do: see who it is, sign out, and set up a
 * second factor (TOTP or a passkey). A session from before the account's second factor was set
 * up cannot pass it, so the setup routes refuse it themselves (it signs in again).
 */
const BEFORE_SECOND_FACTOR = new Set([
  'GET /api/auth/me',
  'POST /api/auth/signout',
  'GET /api/auth/totp',
  'POST /api/auth/totp',
  'POST /api/auth/totp/confirm',
  'GET /api/auth/passkeys',
  'POST /api/auth/passkeys/registration-options',
  'POST /api/auth/passkeys',
]);

const GATE_MESSAGES = {
  second_factor_setup_required:
    'this server requires two-factor sign-in: set up an authenticator app or a passkey first (in the web app: Settings, Two-factor sign-in)',
  second_factor_required:
    'this server requires two-factor sign-in and this session signed in before your second factor was set up: sign out and sign in again with it',
} as const;

/**
 * Resolves the caller on every request and enforces the route's access. A session cookie
 * only authenticates unsafe requests from the app's own origin (cross-site request forgery):
 * other origins must send a Bearer token, which a forged request cannot carry.
 */
export function registerAuth(app: FastifyInstance, auth: AuthService, publicUrl: string | null): void {
  app.decorateRequest('auth', null);
  app.addHook('onRequest', async (request) => {
    rememberRequest(request);
    const found = tokenOf(request);
    if (found?.cookie && !SAFE_METHODS.has(request.method) && isCrossOrigin(request, publicUrl)) {
      throw new HttpError('forbidden', 'cross-origin requests must authenticate with a Bearer token', {
        reason: 'cross_origin_cookie',
      });
    }
    const basic = takesBasic(request.url) ? basicCredentials(request) : null;
    request.auth = basic
      ? await auth.authenticateBasic(basic.username, basic.password)
      : found
        ? await auth.authenticate(found.token, sessionClient(request))
        : null;
    const gate = request.auth?.secondFactorGate;
    if (gate && !BEFORE_SECOND_FACTOR.has(`${request.method} ${request.routeOptions.url}`)) {
      // Public routes (pages, shares) see an anonymous caller; WebDAV then asks for credentials.
      if (accessOf(request) === 'public') request.auth = null;
      else throw new HttpError(gate, GATE_MESSAGES[gate]);
    }
    setRequestActor(request);
    const access = accessOf(request);
    if (access === 'public') return;
    if (!request.auth) throw new HttpError('unauthorized', 'sign in first');
    if (access === 'admin' && !request.auth.user.isAdmin) {
      throw new HttpError('forbidden', 'administrators only');
    }
  });
}

export function currentUser(request: FastifyRequest): User {
  if (!request.auth) throw new HttpError('unauthorized', 'sign in first');
  return request.auth.user;
}

/**
 * The user of a signed-in session, refusing app passwords: a leaked one must not be able to mint
 * more of them, hide its tracks (dismiss the alerts it raised) or take over the account.
 */
export function sessionOnly(request: FastifyRequest, what: string): User {
  if (request.auth?.appPasswordId)
    throw new HttpError('forbidden', `${what} from a signed-in session, not with an app password`);
  return currentUser(request);
}

/**
 * As `sessionOnly`, and the session must have passed two-factor sign-in when the user has it on:
 * what it allows (minting app passwords) would otherwise let a session from before two-factor
 * was turned on, or a stolen one, get around it.
 */
export function secondFactorSession(request: FastifyRequest, what: string): User {
  const user = sessionOnly(request, what);
  if (request.auth?.secondFactorMissing)
    throw new HttpError(
      'second_factor_required',
      `${what} from a session that passed two-factor sign-in: this one signed in before it was turned on; sign out and sign in again with your code`,
    );
  return user;
}
