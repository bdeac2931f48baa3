import type { Readable } from 'node:stream';
import {
  ChunkParams,
  CompleteUploadBody,
  CompleteUploadResponse,
  CreateUploadBody,
  CreateUploadResponse,
  ErrorBody,
  UploadParams,
  UploadSession,
} from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';
import { currentUser } from '../plugins/auth.ts';
import type { ChunkChecksum } from '../services/hashing/chunk.ts';

const MD5_BASE64 = /^[A-Za-z0-9+/]{22}==$/;

/** `Content-MD5` is base64 (RFC 1864); the server compares hex. */
export function md5FromHeader(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !MD5_BASE64.test(value)) {
    throw new HttpError('bad_request', 'Content-MD5 must be the base64 of a 16-byte MD5 digest');
  }
  return Buffer.from(value, 'base64').toString('hex');
}

/** One member of an RFC 9530 digest field: `algorithm=:base64:`, parameters ignored. */
const DIGEST_MEMBER = /^([a-z*][a-z0-9_.*-]*)=:([A-Za-z0-9+/]*={0,2}):(?:;.*)?$/;

/**
 * The CRC-32C of `Content-Digest` (RFC 9530, a Structured Fields dictionary whose members are
 * byte sequences), undefined when the field names other algorithms only. Byte sequences cannot
 * hold a comma, so splitting on commas is exact for well-formed fields; anything else is a 400.
 */
export function crc32cFromDigest(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  const members = (Array.isArray(value) ? value.join(',') : value).split(',');
  let crc: number | undefined;
  for (const member of members) {
    const match = DIGEST_MEMBER.exec(member.trim());
    if (!match) {
      throw new HttpError(
        'bad_request',
        'Content-Digest must be a list of algorithm=:base64: members (RFC 9530)',
      );
    }
    if (match[1] !== 'crc32c') continue;
    const bytes = Buffer.from(match[2] as string, 'base64');
    if (bytes.length !== 4) {
      throw new HttpError('bad_request', 'Content-Digest crc32c must be the base64 of 4 bytes (big-endian)');
    }
    crc = bytes.readUInt32BE(0);
  }
  return crc;
}

/**
 * What a chunk PUT's headers say about its body: the checksum it is checked against before it is
 * acknowledged (required: a chunk sent without one could only be found damaged at `complete`,
 * and then the whole upload fails) and its length (null when not given). A compressed body is
 * refused: it would be stored as sent, not as the file's bytes.
 */
export function chunkHeaders(request: FastifyRequest): {
  checksum: ChunkChecksum;
  contentLength: number | null;
} {
  const encoding = request.headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') {
    throw new HttpError('unsupported_media_type', 'chunks must be sent without Content-Encoding');
  }
  const crc = crc32cFromDigest(request.headers['content-digest']);
  const md5 = md5FromHeader(request.headers['content-md5']);
  // Both sent: the CRC is checked (it costs a sixth of an MD5 pass and detects the same errors).
  const checksum: ChunkChecksum | undefined =
    crc !== undefined
      ? { algorithm: 'crc32c', value: crc }
      : md5
        ? { algorithm: 'md5', hex: md5 }
        : undefined;
  if (!checksum) {
    throw new HttpError(
      'checksum_required',
      'send each chunk with its checksum: Content-Digest: crc32c=:<base64>: (RFC 9530) or Content-MD5',
    );
  }
  const lengthHeader = request.headers['content-length'];
  return { checksum, contentLength: lengthHeader === undefined ? null : Number(lengthHeader) };
}

export async function requireOctetStream(request: FastifyRequest): Promise<void> {
  if (!/^application\/octet-stream\s*(;|$)/i.test(request.headers['content-type'] ?? '')) {
    throw new HttpError('unsupported_media_type', 'send chunks as Content-Type: application/octet-stream');
  }
}

export async function uploadRoutes(app: AppInstance): Promise<void> {
  const { uploads } = app.services;

  // Chunk bodies are read by the service itself (into one chunk-sized buffer): the parser hands over the raw request stream, so
  // the global bodyLimit does not apply and the service counts bytes itself.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

  app.post(
    '/api/uploads',
    {
      schema: {
        tags: ['uploads'],
        body: CreateUploadBody,
        response: { 200: CreateUploadResponse, 201: CreateUploadResponse, '4xx': ErrorBody },
      },
      config: {
        // Content look-ups answer "is this hash stored?": limited so they cannot be used to probe.
        rateLimit: {
          max: app.config.uploadLookupRateLimit,
          timeWindow: 60_000,
          hook: 'preHandler',
          keyGenerator: (request) => request.auth?.user.id ?? request.ip,
        },
      },
    },
    async (request, reply) => {
      const result = await uploads.create(currentUser(request).id, request.body);
      // Something new exists (a file, or an upload session): 201; a challenge or a resume: 200.
      const created = result.status === 'instant' || result.status === 'created';
      return reply.status(created ? 201 : 200).send(result);
    },
  );

  app.put(
    '/api/uploads/:uploadId/chunks/:index',
    {
      // Checked before any parser runs: another type would be parsed (JSON) or stored altered.
      onRequest: requireOctetStream,
      config: { affectsReads: false },
      schema: {
        tags: ['uploads'],
        params: ChunkParams,
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const { checksum, contentLength } = chunkHeaders(request);
      const { upload, expected } = await uploads.prepareChunk(
        currentUser(request).id,
        request.params.uploadId,
        request.params.index,
        contentLength,
      );
      await uploads.putChunk(
        upload,
        request.params.index,
        expected,
        // The octet-stream parser above hands over the request stream itself.
        request.body as Readable,
        checksum,
      );
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/uploads/:uploadId',
    {
      schema: { tags: ['uploads'], params: UploadParams, response: { 200: UploadSession, '4xx': ErrorBody } },
    },
    async (request) => uploads.get(currentUser(request).id, request.params.uploadId),
  );

  app.post(
    '/api/uploads/:uploadId/complete',
    {
      schema: {
        tags: ['uploads'],
        params: UploadParams,
        body: CompleteUploadBody,
        response: { 201: CompleteUploadResponse, '4xx': ErrorBody },
      },
      // v1 clients send no body at all: that is `{}`.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request, reply) => {
      const result = await uploads.complete(
        currentUser(request).id,
        request.params.uploadId,
        request.body.sha1,
      );
      return reply.status(201).send(result);
    },
  );

  app.delete(
    '/api/uploads/:uploadId',
    {
      schema: { tags: ['uploads'], params: UploadParams, response: { 204: Type.Null(), '4xx': ErrorBody } },
    },
    async (request, reply) => {
      await uploads.abort(currentUser(request).id, request.params.uploadId);
      return reply.status(204).send(null);
    },
  );
}
