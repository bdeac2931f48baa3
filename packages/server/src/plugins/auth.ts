import type { User } from '@dfs/shared';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../errors.ts';
import type { Authenticated, AuthService } from '../services/auth.ts';

export const SESSION_COOKIE = 'dfs_session';

declare module 'fastify' {
  interface FastifyRequest {
    auth: Authenticated | null;
  }
}

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
 * Resolves the caller on every request; routes that need one use `requireUser`. A session cookie
 * only authenticates unsafe requests from the app's own origin (cross-site request forgery):
 * other origins must send a Bearer token, which a forged request cannot carry.
 */
export function registerAuth(app: FastifyInstance, auth: AuthService, publicUrl: string | null): void {
  app.decorateRequest('auth', null);
  app.addHook('onRequest', async (request) => {
    const found = tokenOf(request);
    if (found?.cookie && !SAFE_METHODS.has(request.method) && isCrossOrigin(request, publicUrl)) {
      throw new HttpError('forbidden', 'cross-origin requests must authenticate with a Bearer token', {
        reason: 'cross_origin_cookie',
      });
    }
    request.auth = found ? await auth.authenticate(found.token) : null;
  });
}

export async function requireUser(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  if (!request.auth) throw new HttpError('unauthorized', 'sign in first');
}

export async function requireAdmin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  await requireUser(request, reply);
  if (!request.auth?.user.isAdmin) throw new HttpError('forbidden', 'administrators only');
}

export function currentUser(request: FastifyRequest): User {
  if (!request.auth) throw new HttpError('unauthorized', 'sign in first');
  return request.auth.user;
}
