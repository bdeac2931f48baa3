import type { User } from '@dfs/shared';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../errors.ts';
import type { AuthService } from '../services/auth.ts';

export const SESSION_COOKIE = 'dfs_session';

declare module 'fastify' {
  interface FastifyRequest {
    auth: { user: User; sessionId: string } | null;
  }
}

function tokenOf(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice('Bearer '.length).trim() || null;
  return request.cookies[SESSION_COOKIE] ?? null;
}

/** Resolves the caller on every request; routes that need one use `requireUser`. */
export function registerAuth(app: FastifyInstance, auth: AuthService): void {
  app.decorateRequest('auth', null);
  app.addHook('onRequest', async (request) => {
    const token = tokenOf(request);
    request.auth = token ? await auth.authenticate(token) : null;
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
