import {
  ContentInfo,
  CreateFolderBody,
  ErrorBody,
  FileList,
  FileResponse,
  ListFilesQuery,
  PatchFileBody,
  Sha1,
} from '@dfs/shared';
import multipart from '@fastify/multipart';
import { Type } from '@sinclair/typebox';
import type { AppInstance } from '../app.ts';
import { HttpError, notFound } from '../errors.ts';
import { currentUser, requireUser } from '../plugins/auth.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

export async function fileRoutes(app: AppInstance): Promise<void> {
  const { files, uploads, downloads, repos } = app.services;
  await app.register(multipart, {
    // One file per request; the byte limit is enforced while staging (one past the maximum, so
    // an oversize body is detected rather than silently truncated).
    limits: { files: 1, fields: 4, fieldSize: 1024, parts: 5, fileSize: app.config.maxFileSize + 1 },
  });
  // Any other body type gets told what to send instead of a bare 415 (`curl --data-binary`).
  app.addContentTypeParser('*', (request, _payload, done) => {
    const upload = request.method === 'POST' && request.routeOptions.url === '/api/files';
    done(
      new HttpError(
        'unsupported_media_type',
        upload
          ? 'send multipart/form-data with the file in a "file" field (curl -F file=@name), or use the chunked upload API'
          : 'send application/json',
      ),
      undefined,
    );
  });

  app.get(
    '/api/files',
    {
      onRequest: requireUser,
      schema: { tags: ['files'], querystring: ListFilesQuery, response: { 200: FileList, '4xx': ErrorBody } },
    },
    async (request) => files.list(currentUser(request).id, request.query),
  );

  app.post(
    '/api/files',
    {
      onRequest: requireUser,
      schema: {
        tags: ['files'],
        consumes: ['multipart/form-data'],
        querystring: Type.Object({ parentId: Type.Optional(Type.String()) }),
        response: { 201: FileResponse, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      if (!request.isMultipart()) throw new HttpError('unsupported_media_type', 'send multipart/form-data');
      const part = await request.file();
      if (part?.fieldname !== 'file') throw new HttpError('bad_request', 'the form needs a "file" field');
      const field = (name: string) => {
        const value = (part.fields[name] as { value?: unknown } | undefined)?.value;
        return typeof value === 'string' && value !== '' ? value : undefined;
      };
      const parentId = field('parentId') ?? request.query.parentId;
      const sha1 = field('sha1');
      if (sha1 !== undefined && !/^[0-9a-fA-F]{40}$/.test(sha1)) {
        throw new HttpError('bad_request', 'the "sha1" field must be 40 hex digits');
      }
      const file = await uploads.uploadSingle(
        currentUser(request).id,
        parentId,
        part.filename,
        part.file,
        sha1,
      );
      return reply.status(201).send({ file });
    },
  );

  app.post(
    '/api/folders',
    {
      onRequest: requireUser,
      schema: { tags: ['files'], body: CreateFolderBody, response: { 201: FileResponse, '4xx': ErrorBody } },
    },
    async (request, reply) => {
      const file = await files.createFolder(
        currentUser(request).id,
        request.body.name,
        request.body.parentId,
      );
      return reply.status(201).send({ file });
    },
  );

  app.get(
    '/api/files/:id',
    {
      onRequest: requireUser,
      schema: { tags: ['files'], params: IdParams, response: { 200: FileResponse, '4xx': ErrorBody } },
    },
    async (request) => ({ file: await files.get(currentUser(request).id, request.params.id) }),
  );

  app.patch(
    '/api/files/:id',
    {
      onRequest: requireUser,
      schema: {
        tags: ['files'],
        params: IdParams,
        body: PatchFileBody,
        response: { 200: FileResponse, '4xx': ErrorBody },
      },
    },
    async (request) => ({
      file: await files.patch(currentUser(request).id, request.params.id, request.body),
    }),
  );

  app.delete(
    '/api/files/:id',
    {
      onRequest: requireUser,
      schema: { tags: ['files'], params: IdParams, response: { 204: Type.Null(), '4xx': ErrorBody } },
    },
    async (request, reply) => {
      await files.trash(currentUser(request).id, request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/files/:id/content',
    {
      onRequest: requireUser,
      schema: {
        tags: ['files'],
        params: IdParams,
        querystring: Type.Object({
          inline: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('0')])),
        }),
      },
    },
    async (request, reply) => {
      const row = await files.row(currentUser(request).id, request.params.id, 'active');
      const content = row.content_id ? await repos.contents.findById(row.content_id) : undefined;
      if (row.kind !== 'file' || !content)
        throw new HttpError('bad_request', 'folders have no content to download');
      return downloads.send(
        request,
        reply,
        { name: row.name, mime: row.mime, content, createdAt: Number(row.created_at) },
        { inline: request.query.inline === '1' },
      );
    },
  );

  app.get(
    '/api/trash',
    {
      onRequest: requireUser,
      schema: { tags: ['trash'], querystring: ListFilesQuery, response: { 200: FileList, '4xx': ErrorBody } },
    },
    async (request) => files.listTrash(currentUser(request).id, request.query),
  );

  app.post(
    '/api/trash/:id/restore',
    {
      onRequest: requireUser,
      schema: { tags: ['trash'], params: IdParams, response: { 200: FileResponse, '4xx': ErrorBody } },
    },
    async (request) => ({ file: await files.restore(currentUser(request).id, request.params.id) }),
  );

  app.delete(
    '/api/trash/:id',
    {
      onRequest: requireUser,
      schema: { tags: ['trash'], params: IdParams, response: { 204: Type.Null(), '4xx': ErrorBody } },
    },
    async (request, reply) => {
      await files.purge(currentUser(request).id, request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/contents/:sha1',
    {
      onRequest: requireUser,
      schema: {
        tags: ['files'],
        params: Type.Object({ sha1: Sha1 }),
        response: { 200: ContentInfo, '4xx': ErrorBody },
      },
    },
    async (request) => {
      const content = await repos.contents.findBySha1(request.params.sha1);
      // Only an owner learns that a content exists; anyone else sees what a missing hash looks like.
      if (!content || !(await repos.files.userOwnsContent(currentUser(request).id, content.id))) {
        throw notFound('content not found');
      }
      const replicas = await repos.contents.replicasOf(content.id);
      return {
        sha1: content.sha1,
        size: Number(content.size),
        createdAt: new Date(Number(content.created_at)).toISOString(),
        replicas: replicas.map((r) => ({ nodeId: r.node_id, nodeName: r.node_name, state: r.state })),
      };
    },
  );
}
