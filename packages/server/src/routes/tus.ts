import type { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';
import { conflictRule } from '../http/on-conflict.ts';
import { currentUser } from '../plugins/auth.ts';
import { mtimeFromText } from '../services/mtime.ts';
import { parseMetadata, type TusState } from '../services/tus.ts';

const TUS_VERSION = '1.0.0';
const EXTENSIONS = 'creation,creation-with-upload,termination,expiration,checksum';
const OCTETS = 'application/offset+octet-stream';
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

export { parseMetadata };

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function nonNegative(request: FastifyRequest, name: string): number {
  const text = header(request, name);
  const value = text !== undefined && /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value))
    throw new HttpError('bad_request', `${name} must be a non-negative integer`);
  return value;
}

function checksumOf(request: FastifyRequest): { algorithm: 'sha1'; digest: Buffer } | undefined {
  const text = header(request, 'upload-checksum');
  if (text === undefined) return undefined;
  const [algorithm, value] = text.trim().split(' ');
  if (algorithm !== 'sha1') throw new HttpError('bad_request', 'Upload-Checksum supports sha1 only');
  const digest = Buffer.from(value ?? '', 'base64');
  if (digest.length !== 20)
    throw new HttpError('bad_request', 'Upload-Checksum: sha1 needs a 20-byte base64 digest');
  return { algorithm, digest };
}

/**
 * tus 1.0 at /api/tus/ (https://tus.io/protocols/resumable-upload): the protocol's headers here,
 * its rules in services/tus.ts. Authenticated like the rest of /api: a Bearer token (an app
 * password for programs) or the web app's session cookie.
 */
export async function tusRoutes(app: AppInstance): Promise<void> {
  const { tus } = app.services;
  // PATCH bodies (and creation-with-upload) are streamed to the service, never buffered here.
  app.addContentTypeParser(OCTETS, (_request, payload, done) => done(null, payload));

  const baseUrl = (request: FastifyRequest) =>
    app.config.publicUrl ?? `${request.protocol}://${request.host}`;

  app.addHook('onRequest', async (request, reply) => {
    reply.header('Tus-Resumable', TUS_VERSION);
    if (request.method === 'OPTIONS') return;
    if (header(request, 'tus-resumable') !== TUS_VERSION) {
      reply.header('Tus-Version', TUS_VERSION);
      throw new HttpError(
        'precondition_failed',
        `this server speaks tus ${TUS_VERSION} (Tus-Resumable header)`,
      );
    }
  });

  const describe = (reply: FastifyReply, state: TusState) =>
    reply
      .header('Upload-Offset', String(state.offset))
      .header('Upload-Expires', new Date(state.expiresAt).toUTCString())
      .header('Cache-Control', 'no-store');

  app.options(
    '/api/tus/',
    {
      schema: { tags: ['tus'], summary: 'tus discovery: version, extensions, limits' },
      config: { access: 'public' },
    },
    async (_request, reply) =>
      reply
        .status(204)
        .header('Tus-Version', TUS_VERSION)
        .header('Tus-Extension', EXTENSIONS)
        .header('Tus-Max-Size', String(app.config.maxFileSize))
        .header('Tus-Checksum-Algorithm', 'sha1')
        .send(),
  );

  app.post(
    '/api/tus/',
    { schema: { tags: ['tus'], summary: 'tus creation (and creation-with-upload)' } },
    async (request, reply) => {
      if (header(request, 'upload-defer-length') !== undefined) {
        throw new HttpError('bad_request', 'Upload-Defer-Length is not supported: send Upload-Length');
      }
      const length = nonNegative(request, 'upload-length');
      if (length > app.config.maxFileSize) {
        throw new HttpError('file_too_large', `files may be at most ${app.config.maxFileSize} bytes`);
      }
      const raw = header(request, 'upload-metadata') ?? '';
      const metadata = parseMetadata(raw);
      const filename = metadata.get('filename') ?? metadata.get('name');
      if (!filename) throw new HttpError('bad_request', 'Upload-Metadata must carry a filename');
      const parentId = metadata.get('parentId') || undefined;
      // tus clients commonly send seconds; ISO 8601 is the API's own form: both are taken.
      const mtimeText = metadata.get('mtime');
      const mtime = mtimeText ? mtimeFromText(mtimeText, Date.now()) : undefined;
      const onConflict = conflictRule(metadata.get('onConflict'));
      const user = currentUser(request);
      let state = await tus.create(user.id, {
        length,
        filename,
        parentId,
        metadata: raw,
        ...(mtime === undefined ? {} : { mtime }),
        ...(onConflict === undefined ? {} : { onConflict }),
      });
      const withBody = request.headers['content-type'] === OCTETS && request.body;
      if (withBody || length === 0) {
        state = await tus.append(
          user.id,
          state.id,
          0,
          withBody ? (request.body as Readable) : undefined,
          checksumOf(request),
        );
      }
      describe(reply, state).header('Location', `${baseUrl(request)}/api/tus/${state.id}`);
      if (!withBody && length !== 0) reply.removeHeader('Upload-Offset');
      return reply.status(201).send();
    },
  );

  app.route({
    method: 'HEAD',
    url: '/api/tus/:id',
    schema: { tags: ['tus'], summary: 'tus: the offset to resume from', params: IdParams },
    handler: async (request, reply) => {
      const { id } = request.params as { id: string };
      const state = await tus.state(currentUser(request).id, id);
      describe(reply, state).header('Upload-Length', String(state.length));
      if (state.metadata) reply.header('Upload-Metadata', state.metadata);
      return reply.status(200).send();
    },
  });

  app.patch(
    '/api/tus/:id',
    { schema: { tags: ['tus'], summary: 'tus: append bytes at Upload-Offset', params: IdParams } },
    async (request, reply) => {
      if (request.headers['content-type'] !== OCTETS) {
        throw new HttpError('unsupported_media_type', `a tus PATCH carries Content-Type: ${OCTETS}`);
      }
      const offset = nonNegative(request, 'upload-offset');
      const state = await tus.append(
        currentUser(request).id,
        request.params.id,
        offset,
        request.body as Readable,
        checksumOf(request),
        Number(request.headers['content-length']),
      );
      return describe(reply, state).status(204).send();
    },
  );

  app.delete(
    '/api/tus/:id',
    { schema: { tags: ['tus'], summary: 'tus termination', params: IdParams } },
    async (request, reply) => {
      await tus.terminate(currentUser(request).id, request.params.id);
      return reply.status(204).send();
    },
  );
}
