import type { Readable } from 'node:stream';
import {
  CompleteUploadBody,
  CreateDropUploadBody,
  DropChunkParams,
  DroppedFile,
  DropUploadParams,
  ErrorBody,
  ShareTokenParams,
  UploadSession,
} from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { AppInstance } from '../app.ts';
import { shareGuards } from '../http/share-guards.ts';
import { chunkHeaders, requireOctetStream } from './uploads.ts';

const CreatedDropUpload = Type.Composite([Type.Object({ status: Type.Literal('created') }), UploadSession]);

/**
 * Resumable uploads through an upload request: the chunked upload protocol of `/api/uploads`,
 * under the link. Anyone holding the link (and its password) may open a session; only that link
 * may then resume, complete or abort it. Nothing here lists or serves what the folder holds.
 */
export async function publicUploadRoutes(app: AppInstance): Promise<void> {
  const { shares, uploads } = app.services;
  const limits = app.config.dropRateLimit;

  // As on /api/uploads: the service reads a chunk's body itself, into one chunk-sized buffer.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

  const { guessGate, passwordOf } = shareGuards(app);
  const passwordNote = '`X-Share-Password` on every request when the link has a password.';

  app.post(
    '/api/public/shares/:token/uploads',
    {
      config: {
        access: 'public',
        // Per address, over every link: a link cannot be used to flood its owner's folder.
        rateLimit: {
          max: limits.sessions,
          timeWindow: 60_000,
          keyGenerator: (request) => `drop-sessions:${request.ip}`,
        },
      },
      schema: {
        tags: ['public'],
        summary: 'Start a resumable upload through an upload request',
        description:
          "A chunked upload session into the link's folder (its owner's account). The declared size is held " +
          "against the link's byte limit until the session completes, is aborted or expires. Known content is " +
          `never answered as such: the bytes are always sent. ${passwordNote}`,
        params: ShareTokenParams,
        body: CreateDropUploadBody,
        response: { 201: CreatedDropUpload, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const session = await shares.openUpload(
        request.params.token,
        passwordOf(request),
        guessGate(request),
        request.body,
      );
      return reply.status(201).send({ status: 'created', ...session });
    },
  );

  app.get(
    '/api/public/shares/:token/uploads/:uploadId',
    {
      config: { access: 'public' },
      schema: {
        tags: ['public'],
        summary: 'What the server holds of an upload through the link (to resume it)',
        description: passwordNote,
        params: DropUploadParams,
        response: { 200: UploadSession, '4xx': ErrorBody },
      },
    },
    async (request) =>
      shares.uploadState(
        request.params.token,
        passwordOf(request),
        guessGate(request),
        request.params.uploadId,
      ),
  );

  app.put(
    '/api/public/shares/:token/uploads/:uploadId/chunks/:index',
    {
      onRequest: requireOctetStream,
      config: {
        access: 'public',
        affectsReads: false,
        // Bytes per minute, counted in chunks (every chunk but a file's last is DFS_CHUNK_SIZE).
        rateLimit: {
          max: Math.max(1, Math.ceil(limits.bytes / app.config.chunkSize)),
          timeWindow: 60_000,
          keyGenerator: (request) => `drop-bytes:${request.ip}`,
        },
      },
      schema: {
        tags: ['public'],
        summary: 'Send one chunk of an upload through the link',
        description: `As \`PUT /api/uploads/:uploadId/chunks/:index\`. ${passwordNote}`,
        params: DropChunkParams,
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const { checksum, contentLength } = chunkHeaders(request);
      const { token, uploadId, index } = request.params;
      const { upload, expected } = await shares.prepareChunk(
        token,
        passwordOf(request),
        guessGate(request),
        uploadId,
        index,
        contentLength,
      );
      await uploads.putChunk(upload, index, expected, request.body as Readable, checksum);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/api/public/shares/:token/uploads/:uploadId/complete',
    {
      config: { access: 'public' },
      schema: {
        tags: ['public'],
        summary: 'Complete an upload through the link',
        description:
          "The bytes are verified (against `sha1` when it was given) and the file joins the link's folder; a " +
          `taken name gets a \` (n)\` suffix. \`409 upload_busy\` while verifying: ask again. ${passwordNote}`,
        params: DropUploadParams,
        body: CompleteUploadBody,
        response: { 201: DroppedFile, '4xx': ErrorBody },
      },
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request, reply) => {
      const file = await shares.completeUpload(
        request.params.token,
        passwordOf(request),
        guessGate(request),
        request.params.uploadId,
        request.body.sha1,
      );
      return reply.status(201).send(file);
    },
  );

  app.delete(
    '/api/public/shares/:token/uploads/:uploadId',
    {
      config: { access: 'public' },
      schema: {
        tags: ['public'],
        summary: 'Abort an upload through the link',
        description: `Its bytes are freed and what it held of the link's byte limit is free again. ${passwordNote}`,
        params: DropUploadParams,
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      await shares.abortUpload(
        request.params.token,
        passwordOf(request),
        guessGate(request),
        request.params.uploadId,
      );
      return reply.status(204).send(null);
    },
  );
}
