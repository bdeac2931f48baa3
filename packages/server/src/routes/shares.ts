import {
  CreateShareBody,
  ErrorBody,
  PublicShare,
  ShareList,
  ShareResponse,
  ShareTokenParams,
} from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { currentUser, requireUser } from '../plugins/auth.ts';

export async function shareRoutes(app: AppInstance): Promise<void> {
  const { shares, downloads } = app.services;
  const baseUrl = (request: FastifyRequest) =>
    app.config.publicUrl ?? `${request.protocol}://${request.host}`;

  app.post(
    '/api/files/:id/shares',
    {
      onRequest: requireUser,
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
    { onRequest: requireUser, schema: { tags: ['shares'], response: { 200: ShareList, '4xx': ErrorBody } } },
    async (request) => ({ items: await shares.list(currentUser(request).id, baseUrl(request)) }),
  );

  app.delete(
    '/api/shares/:token',
    {
      onRequest: requireUser,
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
      schema: {
        tags: ['public'],
        params: ShareTokenParams,
        response: { 200: PublicShare, '4xx': ErrorBody },
      },
    },
    async (request) => shares.info(request.params.token),
  );

  app.get(
    '/api/public/shares/:token/content',
    {
      schema: {
        tags: ['public'],
        params: ShareTokenParams,
        querystring: Type.Object({
          inline: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('0')])),
        }),
      },
      config: {
        // Password guesses are limited per link and address.
        rateLimit: {
          max: app.config.sharePasswordRateLimit,
          timeWindow: 60_000,
          keyGenerator: (request) => `${request.ip}:${(request.params as { token?: string }).token ?? ''}`,
        },
      },
    },
    async (request, reply) => {
      const password = request.headers['x-share-password'];
      const { file, claim } = await shares.open(
        request.params.token,
        typeof password === 'string' ? password : undefined,
      );
      return downloads.send(request, reply, file, {
        inline: request.query.inline === '1',
        beforeBody: claim,
      });
    },
  );
}
