import {
  CreateShareBody,
  ErrorBody,
  PublicShare,
  ShareGrant,
  ShareList,
  ShareResponse,
  ShareTokenParams,
} from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';
import { currentUser } from '../plugins/auth.ts';
import { withReads } from '../plugins/read-replica.ts';

export async function shareRoutes(app: AppInstance): Promise<void> {
  const { shares, downloads } = app.services;
  const baseUrl = (request: FastifyRequest) =>
    app.config.publicUrl ?? `${request.protocol}://${request.host}`;

  // Password guesses are limited per link and address — and only guesses: downloads of a link
  // without a password, or with a password already proven, are never throttled (a download
  // manager's 16 connections, an office behind one NAT). GET, HEAD and grants share one budget.
  const guessLimit = app.createRateLimit({
    max: app.config.sharePasswordRateLimit,
    timeWindow: 60_000,
    keyGenerator: (request) => `${request.ip}:${(request.params as { token?: string }).token ?? ''}`,
  });
  const guessGate = (request: FastifyRequest) => async () => {
    const verdict = await guessLimit(request);
    // isAllowed only means "on the allow list"; the count is in isExceeded.
    if (!verdict.isAllowed && verdict.isExceeded) {
      throw new HttpError('rate_limited', `too many password attempts; retry in ${verdict.ttlInSeconds} s`, {
        retryAfter: verdict.ttlInSeconds,
      });
    }
  };
  const passwordOf = (request: FastifyRequest) => {
    const header = request.headers['x-share-password'];
    return typeof header === 'string' ? header : undefined;
  };

  app.post(
    '/api/files/:id/shares',
    {
      schema: {
        tags: ['shares'],
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
        body: Type.Union([CreateShareBody, Type.Null()]),
        response: { 201: ShareResponse, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const share = await shares.create(
        currentUser(request).id,
        request.params.id,
        request.body ?? {},
        baseUrl(request),
      );
      return reply.status(201).send({ share });
    },
  );

  app.get(
    '/api/shares',
    { schema: { tags: ['shares'], response: { 200: ShareList, '4xx': ErrorBody } } },
    async (request) => ({ items: await shares.list(currentUser(request).id, baseUrl(request)) }),
  );

  app.delete(
    '/api/shares/:token',
    {
      schema: {
        tags: ['shares'],
        params: ShareTokenParams,
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      await shares.revoke(currentUser(request).id, request.params.token);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/public/shares/:token',
    {
      config: { access: 'public' },
      schema: {
        tags: ['public'],
        params: ShareTokenParams,
        response: { 200: PublicShare, '4xx': ErrorBody },
      },
    },
    async (request, reply) =>
      withReads(app.services.reads, request, reply, (repos) => shares.info(request.params.token, repos)),
  );

  app.post(
    '/api/public/shares/:token/grants',
    {
      config: { access: 'public' },
      schema: {
        tags: ['public'],
        params: ShareTokenParams,
        response: { 201: ShareGrant, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const grant = await shares.grant(
        request.params.token,
        passwordOf(request),
        guessGate(request),
        baseUrl(request),
      );
      return reply.status(201).send(grant);
    },
  );

  app.get(
    '/api/public/shares/:token/content',
    {
      config: { access: 'public' },
      schema: {
        tags: ['public'],
        params: ShareTokenParams,
        querystring: Type.Object({
          inline: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('0')])),
          grant: Type.Optional(Type.String({ maxLength: 128 })),
        }),
      },
    },
    async (request, reply) => {
      const { file, meter } = await shares.open(
        request.params.token,
        { password: passwordOf(request), grant: request.query.grant },
        guessGate(request),
      );
      return downloads.send(request, reply, file, { inline: request.query.inline === '1', meter });
    },
  );
}
