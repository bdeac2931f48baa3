import contentDisposition from 'content-disposition';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ContentRow } from '../repositories/contents.ts';
import type { ContentStore } from './content-store.ts';
import { etagMatches, parseRange } from './ranges.ts';

/** Types a browser may render in place without risk to the origin (no HTML, no SVG, no XML). */
const INLINE_SAFE = new Set([
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'image/avif',
  'text/plain',
  'application/pdf',
  'audio/mpeg',
  'audio/ogg',
  'audio/wav',
  'audio/webm',
  'video/mp4',
  'video/webm',
  'video/ogg',
]);

/**
 * RFC 6266: `filename*` carries the exact UTF-8 name, and `filename` an ASCII stand-in for old
 * clients, so the header itself never holds a byte outside printable ASCII.
 */
function dispositionFor(name: string, inline: boolean): string {
  const ascii = name
    .normalize('NFKD')
    .replace(/[^\x20-\x7e]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  return contentDisposition(name, { type: inline ? 'inline' : 'attachment', fallback: ascii || 'download' });
}

export interface Downloadable {
  name: string;
  mime: string | null;
  content: ContentRow;
}

/**
 * Sends a content's bytes with the HTTP semantics of a static file: ETag and If-None-Match,
 * one Range (206/416), HEAD without touching storage, and headers that keep a download a
 * download (`attachment`, `nosniff`) unless an inline preview of a safe type was asked for.
 */
export class DownloadResponder {
  constructor(private readonly contents: ContentStore) {}

  async send(
    request: FastifyRequest,
    reply: FastifyReply,
    file: Downloadable,
    options: { inline?: boolean; beforeBody?: () => Promise<void> } = {},
  ): Promise<FastifyReply> {
    const size = Number(file.content.size);
    const etag = `"${file.content.sha1}"`;
    const type = file.mime ?? 'application/octet-stream';
    const inline = options.inline === true && INLINE_SAFE.has(type);
    reply
      .header('ETag', etag)
      .header('Accept-Ranges', 'bytes')
      .header('Cache-Control', 'private, no-cache')
      .header('X-Content-Type-Options', 'nosniff')
      .header('Content-Security-Policy', "default-src 'none'; sandbox")
      .header('Content-Disposition', dispositionFor(file.name, inline))
      .type(inline && type.startsWith('text/') ? `${type}; charset=utf-8` : type);

    if (etagMatches(request.headers['if-none-match'], etag)) return reply.status(304).send();

    const range = parseRange(request.headers.range, size);
    if (range === 'unsatisfiable') {
      return reply
        .status(416)
        .header('Content-Range', `bytes */${size}`)
        .type('application/json')
        .removeHeader('Content-Disposition')
        .send({
          error: { code: 'range_not_satisfiable', message: `range outside 0-${Math.max(0, size - 1)}` },
        });
    }
    const length = range ? range.end - range.start + 1 : size;
    reply.header('Content-Length', length);
    if (range) reply.status(206).header('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
    if (request.method === 'HEAD') {
      // Fastify would rewrite Content-Length to the empty body's; HEAD must announce the GET's.
      reply.hijack();
      reply.raw.writeHead(reply.statusCode, reply.getHeaders() as import('node:http').OutgoingHttpHeaders);
      reply.raw.end();
      return reply;
    }
    await options.beforeBody?.();
    if (length === 0) return reply.send(Buffer.alloc(0));
    return reply.send(await this.contents.open(file.content, range ?? undefined));
  }
}
