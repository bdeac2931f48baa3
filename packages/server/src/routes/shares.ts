import { once } from 'node:events';
import {
  CreateShareBody,
  DroppedFile,
  ErrorBody,
  PublicLink,
  ShareGrant,
  ShareList,
  ShareResponse,
  ShareTokenParams,
} from '@dfs/shared';
import multipart from '@fastify/multipart';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';
import { shareGuards } from '../http/share-guards.ts';
import { currentUser } from '../plugins/auth.ts';
import { withReads } from '../plugins/read-replica.ts';
import { formFileName } from './files.ts';

/**
 * Files an address may send through upload requests in a minute: enough for a folder of photos
 * dropped at once, few enough that a link cannot be used to flood its owner's folder.
 */
export const UPLOAD_REQUEST_RATE_LIMIT = 120;

/** A link by the start of its token: the whole token is the link's secret, and the audit log is exported. */
const tokenPrefix = (token: string) => `${token.slice(0, 8)}…`;

export async function shareRoutes(app: AppInstance): Promise<void> {
  const { shares, downloads } = app.services;
  // Upload requests take one file per request, with the uploader's name as the one other field.
  await app.register(multipart, {
    preservePath: true,
    limits: { files: 1, fields: 1, fieldSize: 1024, parts: 2, fileSize: app.config.maxFileSize + 1 },
  });
  const baseUrl = (request: FastifyRequest) =>
    app.config.publicUrl ?? `${request.protocol}://${request.host}`;

  const { guessGate, passwordOf } = shareGuards(app);

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
      // Links to an item are its owner's to make: a recipient is told so (403), a stranger 404.
      await app.services.access.require(currentUser(request).id, request.params.id, 'owner');
      const share = await shares.create(
        currentUser(request).id,
        request.params.id,
        request.body ?? {},
        baseUrl(request),
      );
      await app.services.audit.record({
        action: 'share.created',
        target: { type: 'file', id: share.fileId },
        details: {
          share: tokenPrefix(share.token),
          kind: share.kind,
          expiresAt: share.expiresAt,
          hasPassword: share.hasPassword,
        },
      });
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
      await app.services.audit.record({
        action: 'share.deleted',
        target: { type: 'share', id: tokenPrefix(request.params.token) },
      });
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
        response: { 200: PublicLink, '4xx': ErrorBody },
      },
    },
    async (request, reply) =>
      withReads(app.services.reads, request, reply, (repos) => shares.info(request.params.token, repos)),
  );

  app.post(
    '/api/public/shares/:token/files',
    {
      config: {
        access: 'public',
        rateLimit: {
          max: UPLOAD_REQUEST_RATE_LIMIT,
          timeWindow: 60_000,
          keyGenerator: (request) => `upload-request:${request.ip}`,
        },
      },
      schema: {
        tags: ['public'],
        summary: 'Upload one file through an upload request',
        description:
          'multipart/form-data: an optional `name` field (who uploads, as the owner will read it), then the ' +
          "`file` part. `X-Share-Password` when the link has a password. The file lands in the link's folder " +
          "under its owner's account; a taken name gets a ` (n)` suffix.",
        consumes: ['multipart/form-data'],
        params: ShareTokenParams,
        response: { 201: DroppedFile, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      if (!request.isMultipart()) throw new HttpError('unsupported_media_type', 'send multipart/form-data');
      const part = await request.file();
      if (part?.fieldname !== 'file') throw new HttpError('bad_request', 'the form needs a "file" field');
      const length = Number(request.headers['content-length']);
      const dropped = await shares.receive(request.params.token, passwordOf(request), guessGate(request), {
        name: formFileName(part.filename),
        body: part.file,
        requestBytes: Number.isSafeInteger(length) && length > 0 ? length : null,
        bodyRead: async () => {
          if (!request.raw.readableEnded) await once(request.raw, 'end');
        },
        uploader: () => {
          const value = (part.fields.name as { value?: unknown } | undefined)?.value;
          return typeof value === 'string' ? value : undefined;
        },
      });
      return reply.status(201).send(dropped);
    },
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
