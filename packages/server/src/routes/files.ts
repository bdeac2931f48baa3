import { once } from 'node:events';
import {
  BATCH_MAX_BYTES,
  BATCH_MAX_FILES,
  ContentInfo,
  CreateFolderBody,
  ErrorBody,
  FileBatchResponse,
  FileList,
  FilePath,
  FileResponse,
  FolderSummary,
  IsoDate,
  ListFilesQuery,
  PatchFileBody,
  Sha1,
} from '@dfs/shared';
import multipart from '@fastify/multipart';
import { Type } from '@sinclair/typebox';
import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';
import { conflictRule } from '../http/on-conflict.ts';
import { currentUser } from '../plugins/auth.ts';
import { withReads } from '../plugins/read-replica.ts';
import type { BatchItem } from '../services/batch-upload.ts';
import { mtimeFromIso } from '../services/mtime.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

export async function fileRoutes(app: AppInstance): Promise<void> {
  const { files, uploads, batchUploads, downloads, access, sharedTree } = app.services;
  await app.register(multipart, {
    // The file name as sent: busboy would otherwise keep only what follows the last `/` or `\`,
    // and a backslash is an ordinary character in a name (names are validated like any other).
    preservePath: true,
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
      schema: { tags: ['files'], querystring: ListFilesQuery, response: { 200: FileList, '4xx': ErrorBody } },
    },
    async (request, reply) => {
      const { at, parentId } = request.query;
      // The past is read from the primary: history written a moment ago is part of it.
      if (at !== undefined) {
        // Inside a share, the past of the owner's folder (the recipient may read its history).
        const ownerId = parentId
          ? (await access.require(currentUser(request).id, parentId, 'read')).ownerId
          : currentUser(request).id;
        return app.services.restores.listAt(ownerId, request.query, Date.parse(at));
      }
      return withReads(app.services.reads, request, reply, (repos) =>
        sharedTree.list(currentUser(request).id, request.query, repos),
      );
    },
  );

  app.post(
    '/api/files',
    {
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
      const length = Number(request.headers['content-length']);
      if (sha1 !== undefined && !/^[0-9a-fA-F]{40}$/.test(sha1)) {
        throw new HttpError('bad_request', 'the "sha1" field must be 40 hex digits');
      }
      const mtime = () => {
        const value = field('mtime');
        return value === undefined ? undefined : mtimeFromIso(value, Date.now());
      };
      const onConflict = () => conflictRule(field('onConflict')) ?? 'rename';
      // A bad time or rule sent before the file is refused before any byte is stored.
      mtime();
      onConflict();
      const file = await uploads.uploadSingle(
        currentUser(request).id,
        parentId,
        formFileName(part.filename),
        part.file,
        sha1,
        Number.isSafeInteger(length) && length > 0 ? length : null,
        // `curl -F file=@x -F parentId=…` puts the folder after the file: once the body is read,
        // a field that came after the file still decides where it goes.
        async () => {
          if (!request.raw.readableEnded) await once(request.raw, 'end');
          return field('parentId') ?? request.query.parentId;
        },
        mtime,
        onConflict,
      );
      return reply.status(201).send({ file });
    },
  );

  app.post(
    '/api/files/batch',
    {
      schema: {
        tags: ['files'],
        summary: 'Many small files in one request',
        description:
          'multipart/form-data: for each file, optional `parentId`, `sha1` and `mtime` (ISO 8601) fields, then its `file` part. ' +
          `At most ${BATCH_MAX_FILES} files and ${BATCH_MAX_BYTES} bytes in all. ` +
          'All or nothing: a bad file fails the batch (its index in `error.index`) and no file of it is added.',
        consumes: ['multipart/form-data'],
        response: { 201: FileBatchResponse, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      if (!request.isMultipart()) throw new HttpError('unsupported_media_type', 'send multipart/form-data');
      const items: BatchItem[] = [];
      let pending: { parentId?: string; sha1?: string; mtime?: number } = {};
      let total = 0;
      const parts = request.parts({
        limits: {
          files: BATCH_MAX_FILES,
          fields: BATCH_MAX_FILES * 3,
          parts: BATCH_MAX_FILES * 4,
          fieldSize: 1024,
          // One past the limit, so a file that is too big is seen rather than silently cut.
          fileSize: BATCH_MAX_BYTES + 1,
        },
      });
      for await (const part of parts) {
        if (part.type === 'field') {
          const value = typeof part.value === 'string' ? part.value : '';
          if (part.fieldname === 'parentId') pending.parentId = value || undefined;
          else if (part.fieldname === 'sha1') {
            if (!/^[0-9a-fA-F]{40}$/.test(value)) {
              throw new HttpError(
                'bad_request',
                `the "sha1" field of file ${items.length} must be 40 hex digits`,
              );
            }
            pending.sha1 = value;
          } else if (part.fieldname === 'mtime') {
            try {
              pending.mtime = mtimeFromIso(value, Date.now());
            } catch (error) {
              throw error instanceof HttpError
                ? new HttpError(error.code, `file ${items.length}: ${error.message}`, { index: items.length })
                : error;
            }
          } else throw new HttpError('bad_request', `unknown field "${part.fieldname}"`);
          continue;
        }
        if (part.fieldname !== 'file') throw new HttpError('bad_request', 'file parts must be named "file"');
        const bytes = await part.toBuffer();
        total += bytes.length;
        if (part.file.truncated || total > BATCH_MAX_BYTES) {
          throw new HttpError(
            'payload_too_large',
            `a batch may carry at most ${BATCH_MAX_BYTES} bytes: send big files through POST /api/files or a chunked upload`,
          );
        }
        items.push({ name: formFileName(part.filename), bytes, ...pending });
        pending = {};
      }
      if (items.length === 0) throw new HttpError('bad_request', 'the form has no "file" part');
      const stored = await batchUploads.store(currentUser(request).id, items);
      return reply.status(201).send({ files: stored });
    },
  );

  app.post(
    '/api/folders',
    {
      schema: {
        tags: ['files'],
        body: CreateFolderBody,
        response: { 200: FileResponse, 201: FileResponse, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const { name, parentId, existing } = request.body;
      const { ownerId } = await access.parent(currentUser(request).id, parentId);
      const { file, created } = await files.createFolder(ownerId, name, parentId, existing);
      return reply.status(created ? 201 : 200).send({ file });
    },
  );

  app.get(
    '/api/files/:id/path',
    {
      schema: { tags: ['files'], params: IdParams, response: { 200: FilePath, '4xx': ErrorBody } },
    },
    async (request, reply) => ({
      items: await withReads(app.services.reads, request, reply, (repos) =>
        sharedTree.path(currentUser(request).id, request.params.id, repos),
      ),
    }),
  );

  app.get(
    '/api/files/:id',
    {
      schema: { tags: ['files'], params: IdParams, response: { 200: FileResponse, '4xx': ErrorBody } },
    },
    async (request, reply) => ({
      file: await withReads(app.services.reads, request, reply, (repos) =>
        sharedTree.get(currentUser(request).id, request.params.id, repos),
      ),
    }),
  );

  app.patch(
    '/api/files/:id',
    {
      schema: {
        tags: ['files'],
        params: IdParams,
        body: PatchFileBody,
        response: { 200: FileResponse, '4xx': ErrorBody },
      },
    },
    async (request) => {
      const userId = currentUser(request).id;
      const { ownerId } = await sharedTree.assertMovable(userId, request.params.id, request.body.parentId);
      await files.patch(ownerId, request.params.id, request.body);
      return { file: await sharedTree.get(userId, request.params.id) };
    },
  );

  app.delete(
    '/api/files/:id',
    {
      schema: { tags: ['files'], params: IdParams, response: { 204: Type.Null(), '4xx': ErrorBody } },
    },
    async (request, reply) => {
      const { ownerId } = await access.requireChange(currentUser(request).id, request.params.id);
      await files.trash(ownerId, request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/files/:id/content',
    {
      schema: {
        tags: ['files'],
        params: IdParams,
        querystring: Type.Object({
          inline: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('0')])),
          /** The bytes the file had at this time. */
          at: Type.Optional(IsoDate),
        }),
      },
    },
    async (request, reply) => {
      const { ownerId } = await access.require(currentUser(request).id, request.params.id, 'read');
      const { at } = request.query;
      const file =
        at === undefined
          ? await files.downloadable(ownerId, request.params.id)
          : await app.services.restores.downloadableAt(ownerId, request.params.id, Date.parse(at));
      return downloads.send(request, reply, file, { inline: request.query.inline === '1' });
    },
  );

  app.get(
    '/api/files/:id/summary',
    {
      schema: {
        tags: ['files'],
        summary: 'What a folder holds, all levels down: files, folders and bytes (a file: itself)',
        params: IdParams,
        response: { 200: FolderSummary, '4xx': ErrorBody },
      },
    },
    async (request, reply) =>
      withReads(app.services.reads, request, reply, async (repos) => {
        const { ownerId } = await access.require(currentUser(request).id, request.params.id, 'read', repos);
        return files.summary(ownerId, request.params.id, repos);
      }),
  );

  app.get(
    '/api/files/:id/thumbnail',
    {
      schema: {
        tags: ['files'],
        summary:
          'A small WebP of an image, a video (a poster frame) or a PDF (its first page), made on first request and cached by content',
        params: IdParams,
        produces: ['image/webp'],
      },
    },
    async (request, reply) => {
      const { ownerId } = await access.require(currentUser(request).id, request.params.id, 'read');
      const file = await files.downloadable(ownerId, request.params.id);
      // A file's bytes never change, so neither does its thumbnail.
      const etag = `"thumb-${file.content.sha1}"`;
      reply.header('ETag', etag).header('Cache-Control', 'private, max-age=31536000, immutable');
      if (request.headers['if-none-match'] === etag) return reply.status(304).send();
      const image = await app.services.thumbnails.get(file.content, file.mime);
      return reply.type('image/webp').header('X-Content-Type-Options', 'nosniff').send(image);
    },
  );

  app.get(
    '/api/trash',
    {
      schema: { tags: ['trash'], querystring: ListFilesQuery, response: { 200: FileList, '4xx': ErrorBody } },
    },
    async (request, reply) =>
      withReads(app.services.reads, request, reply, (repos) =>
        files.listTrash(currentUser(request).id, request.query, repos),
      ),
  );

  app.post(
    '/api/trash/:id/restore',
    {
      schema: { tags: ['trash'], params: IdParams, response: { 200: FileResponse, '4xx': ErrorBody } },
    },
    async (request) => ({ file: await files.restore(currentUser(request).id, request.params.id) }),
  );

  app.delete(
    '/api/trash',
    {
      schema: {
        tags: ['trash'],
        summary: 'Empty the trash: everything in it is deleted for good',
        response: { 200: Type.Object({ purged: Type.Integer({ minimum: 0 }) }), '4xx': ErrorBody },
      },
    },
    async (request) => ({ purged: await files.emptyTrash(currentUser(request).id) }),
  );

  app.delete(
    '/api/trash/:id',
    {
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
      schema: {
        tags: ['files'],
        params: Type.Object({ sha1: Sha1 }),
        response: { 200: ContentInfo, '4xx': ErrorBody },
      },
    },
    async (request) => files.contentInfo(currentUser(request).id, request.params.sha1),
  );
}

/**
 * A multipart file name as the user named the file. Browsers (and the HTML standard's form
 * encoding that other clients follow) send `"`, CR and LF in a file name as %22, %0D and %0A,
 * since the name sits in a quoted header value; nothing else is escaped.
 */
export function formFileName(sent: string): string {
  return sent.replace(/%(22|0D|0A)/gi, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}
