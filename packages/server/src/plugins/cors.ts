import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';

/**
 * Web clients on other origins (Uppy, tus-js-client, another front end) may call the API from the
 * origins in DFS_CORS_ORIGINS, with Bearer tokens only: credentials are never allowed, so a
 * browser never sends the session cookie along (and plugins/auth.ts refuses cross-origin cookies).
 */
export async function registerCors(app: FastifyInstance, origins: string[]): Promise<void> {
  if (origins.length === 0) return;
  const allowed = new Set(origins);
  await app.register(cors, {
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    credentials: false,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    allowedHeaders: [
      'Authorization',
      'Content-Type',
      'Content-MD5',
      'Content-Digest',
      'Range',
      'If-Range',
      'If-None-Match',
      'X-Share-Password',
      'Tus-Resumable',
      'Upload-Length',
      'Upload-Offset',
      'Upload-Metadata',
      'Upload-Checksum',
      'Upload-Defer-Length',
      'Upload-Concat',
      'X-HTTP-Method-Override',
    ],
    exposedHeaders: [
      'ETag',
      'Content-Range',
      'Content-Disposition',
      'Content-Length',
      'Accept-Ranges',
      'Last-Modified',
      'Retry-After',
      'Location',
      'Tus-Resumable',
      'Tus-Version',
      'Tus-Extension',
      'Tus-Max-Size',
      'Tus-Checksum-Algorithm',
      'Upload-Offset',
      'Upload-Length',
      'Upload-Metadata',
      'Upload-Expires',
    ],
    maxAge: 600,
    strictPreflight: false,
  });
}
