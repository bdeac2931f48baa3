import { Credentials, ErrorBody, SigninResponse, UserResponse } from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { AppInstance } from '../app.ts';
import { currentUser, requireUser, SESSION_COOKIE } from '../plugins/auth.ts';

export async function authRoutes(app: AppInstance): Promise<void> {
  const { auth } = app.services;

  app.post(
    '/api/auth/signup',
    { schema: { tags: ['auth'], body: Credentials, response: { 201: UserResponse, '4xx': ErrorBody } } },
    async (request, reply) => {
      const user = await auth.signup(request.body.username, request.body.password);
      return reply.status(201).send({ user });
    },
  );

  app.post(
    '/api/auth/signin',
    {
      schema: { tags: ['auth'], body: Credentials, response: { 200: SigninResponse, '4xx': ErrorBody } },
      config: {
        rateLimit: {
          max: app.config.signinRateLimit,
          timeWindow: 60_000,
          keyGenerator: (request) =>
            `${request.ip}:${String((request.body as { username?: unknown } | undefined)?.username ?? '').toLowerCase()}`,
          hook: 'preHandler',
        },
      },
    },
    async (request, reply) => {
      const { user, token } = await auth.signin(request.body.username, request.body.password);
      reply.setCookie(SESSION_COOKIE, token, {
        httpOnly: true,
        sameSite: 'lax',
        secure: 'auto',
        path: '/',
        maxAge: Math.floor(app.config.sessionTtlMs / 1000),
      });
      return { user, token };
    },
  );

  app.post(
    '/api/auth/signout',
    { onRequest: requireUser, schema: { tags: ['auth'], response: { 204: Type.Null(), '4xx': ErrorBody } } },
    async (request, reply) => {
      if (request.auth) await auth.signout(request.auth.sessionId);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/auth/me',
    {
      onRequest: requireUser,
      schema: { tags: ['auth'], response: { 200: UserResponse, '4xx': ErrorBody } },
    },
    async (request) => ({ user: currentUser(request) }),
  );
}
