import { ErrorBody, SessionList, SignedOutSessions } from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { sessionOnly as sessionOnlyUser } from '../plugins/auth.ts';

/** The signed-in user's own sessions: what signed in where, and signing them out. */
export async function sessionRoutes(app: AppInstance): Promise<void> {
  const { sessions, audit } = app.services;
  // An app password is not a session, and a leaked one must not sign its owner out everywhere.
  const sessionOnly = (request: FastifyRequest) => sessionOnlyUser(request, 'sessions are managed');
  const currentId = (request: FastifyRequest) => request.auth?.sessionId ?? null;

  app.get(
    '/api/auth/sessions',
    {
      schema: {
        tags: ['auth'],
        summary: 'Your signed-in browsers and devices, newest first',
        response: { 200: SessionList, '4xx': ErrorBody },
      },
    },
    async (request) => ({ items: await sessions.list(sessionOnly(request).id, currentId(request)) }),
  );

  app.delete(
    '/api/auth/sessions/:id',
    {
      schema: {
        tags: ['auth'],
        summary: 'Sign one of your sessions out (this one too, if it is its id)',
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      await sessions.revoke(sessionOnly(request).id, request.params.id);
      await audit.record({ action: 'session.revoked', target: { type: 'session', id: request.params.id } });
      return reply.status(204).send(null);
    },
  );

  app.delete(
    '/api/auth/sessions',
    {
      schema: {
        tags: ['auth'],
        summary: 'Sign out every session of yours but this one',
        response: { 200: SignedOutSessions, '4xx': ErrorBody },
      },
    },
    async (request) => {
      const user = sessionOnly(request);
      const signedOut = await sessions.revokeOthers(user.id, currentId(request));
      await audit.record({
        action: 'session.revoked',
        target: { type: 'user', id: user.id },
        details: { others: true, signedOut },
      });
      return { signedOut };
    },
  );
}
