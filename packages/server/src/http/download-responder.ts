import path from 'node:path';
import { pipeline, type Readable, Transform } from 'node:stream';
import anyAscii from 'any-ascii';
import contentDisposition from 'content-disposition';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ContentRow } from '../repositories/contents.ts';
import type { ContentStore } from '../services/content-store.ts';
import type { Metrics } from '../services/operations/metrics.ts';
import type { ShareMeter } from '../services/shares.ts';
import { etagMatches, ifRangeHolds, parseRange } from './ranges.ts';

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
 * RFC 6266: `filename*` carries the exact UTF-8 name, and `filename` an ASCII stand-in for clients
 * that ignore it (`curl -OJ`, old browsers), so the header never holds a byte outside printable
 * ASCII. The stand-in is transliterated ("报告.pdf" → "BaoGao.pdf"), never just stripped, and
 * keeps the extension even when the stem has nothing left.
 */
export function asciiFallbackName(name: string): string {
  const clean = (text: string) =>
    anyAscii(text)
      .replace(/[^\x20-\x7e]|["\\%]/g, '')
      .replace(/\s+/g, ' ')
      .trim();
  const ext = path.extname(name);
  const asciiExt = clean(ext);
  const stem = clean(ext === name ? name : name.slice(0, name.length - ext.length));
  return `${stem || 'download'}${asciiExt.length > 1 ? asciiExt : ''}`;
}

/** `attachment` with the exact name and an ASCII stand-in (see asciiFallbackName). */
export function attachmentDisposition(name: string): string {
  return dispositionFor(name, false);
}

function dispositionFor(name: string, inline: boolean): string {
  return contentDisposition(name, {
    type: inline ? 'inline' : 'attachment',
    fallback: asciiFallbackName(name),
  });
}

/** How long a presigned download URL works: a transfer needs it only to start (or resume). */
const PRESIGN_SECONDS = 600;

export interface Downloadable {
  name: string;
  mime: string | null;
  content: ContentRow;
  /** When the file got these bytes: Last-Modified. */
  createdAt: number;
}

/**
 * Sends a content's bytes with the HTTP semantics of a static file: ETag and If-None-Match,
 * one Range (206/416), HEAD without touching storage, and headers that keep a download a
 * download (`attachment`, `nosniff`) unless an inline preview of a safe type was asked for.
 */
export class DownloadResponder {
  constructor(
    private readonly contents: ContentStore,
    private readonly metrics?: Metrics,
  ) {}

  async send(
    request: FastifyRequest,
    reply: FastifyReply,
    file: Downloadable,
    options: { inline?: boolean; meter?: ShareMeter } = {},
  ): Promise<FastifyReply> {
    const size = Number(file.content.size);
    const etag = `"${file.content.sha1}"`;
    const type = file.mime ?? 'application/octet-stream';
    const inline = options.inline === true && INLINE_SAFE.has(type);
    const lastModified = new Date(Math.floor(file.createdAt / 1000) * 1000).toUTCString();
    reply
      .header('ETag', etag)
      .header('Last-Modified', lastModified)
      .header('Accept-Ranges', 'bytes')
      .header('Cache-Control', 'private, no-cache')
      .header('X-Content-Type-Options', 'nosniff')
      .header('Content-Security-Policy', "default-src 'none'; sandbox")
      .header('Content-Disposition', dispositionFor(file.name, inline))
      .type(inline && type.startsWith('text/') ? `${type}; charset=utf-8` : type);

    if (etagMatches(request.headers['if-none-match'], etag)) return reply.status(304).send();

    // If-Range (RFC 9110 §13.1.5): a resume of other bytes than these gets the whole body.
    const range = ifRangeHolds(request.headers['if-range'] as string | undefined, etag, lastModified)
      ? parseRange(request.headers.range, size)
      : null;
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
    const meter = options.meter;
    if (length > 0 && !meter?.limited && request.headers['if-range'] === undefined) {
      // The bytes can come from elsewhere: nginx reading a node's directory (X-Accel-Redirect), or
      // an S3 replica. Not for a link with a download limit (a cut-off transfer could not give
      // back its reservation), nor for If-Range, whose validator nginx or the backend would
      // compare with its own instead of ours.
      const offload = await this.contents.offload(file.content, {
        expiresInSeconds: PRESIGN_SECONDS,
        contentDisposition: dispositionFor(file.name, inline),
        contentType: String(reply.getHeader('content-type')),
      });
      if (offload) {
        await meter?.reserve(length);
        reply.removeHeader('Content-Length').removeHeader('Content-Range');
        // Counted as a download; its bytes are nginx's or the object store's, not the app's.
        this.metrics?.downloads.inc({ via: offload.kind });
        if (offload.kind === 'accel') {
          // nginx answers the Range itself (206, Content-Range, Accept-Ranges) and keeps the type,
          // disposition and caching headers; the internal locations add back ETag, CSP and nosniff.
          return reply
            .status(200)
            .removeHeader('Accept-Ranges')
            .header('X-Accel-Redirect', offload.uri)
            .send();
        }
        return reply
          .status(302)
          .removeHeader('Content-Disposition')
          .header('Cache-Control', 'no-store')
          .header('Location', offload.url)
          .send();
      }
    }
    const metrics = this.metrics;
    if (!meter) {
      metrics?.downloads.inc({ via: 'app' });
      if (length === 0) return reply.send(Buffer.alloc(0));
      const body = await this.contents.open(file.content, range ?? undefined);
      if (!metrics) return reply.send(body);
      // Bytes count as they leave, so a cut transfer counts what it sent.
      const counted = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          metrics.bytesSent.inc(chunk.length);
          callback(null, chunk);
        },
      });
      pipeline(body, counted, () => undefined);
      return reply.send(counted);
    }
    // The first step is reserved, and the whole range checked, before any header goes out: a link
    // that cannot deliver this response answers 410 here, not with a cut transfer.
    const charge = new StepCharge(meter, length);
    await charge.start();
    metrics?.downloads.inc({ via: 'app' });
    if (length === 0) return reply.send(Buffer.alloc(0));
    let body: Readable;
    try {
      body = await this.contents.open(file.content, range ?? undefined);
    } catch (error) {
      await charge.finish();
      throw error;
    }
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        charge.pass(chunk.length).then(
          () => {
            metrics?.bytesSent.inc(chunk.length);
            callback(null, chunk);
          },
          (err: unknown) => callback(err as Error),
        );
      },
    });
    reply.raw.once('close', () => {
      // What reached the socket counts; a cut-off transfer gives back the rest of its reservation.
      charge.finish().catch((err) => request.log.warn({ err }, 'share accounting'));
    });
    // pipeline carries a failed read (say, a replica that fails verification) on to the response,
    // which then ends without completing.
    pipeline(body, counter, () => undefined);
    return reply.send(counter);
  }
}

/**
 * Charges one response's bytes to its link as they pass, a step ahead (ShareMeter.step): the next
 * step is reserved while the current one is still being sent, so the stream rarely waits for the
 * database, and a link spent by other downloads meanwhile cuts this one at the step's end.
 */
class StepCharge {
  private reserved = 0;
  private sent = 0;
  private pending: Promise<void> | null = null;
  private finished = false;

  constructor(
    private readonly meter: ShareMeter,
    private readonly length: number,
  ) {}

  async start(): Promise<void> {
    const first = Math.min(this.length, this.meter.step);
    await this.meter.reserve(first, this.length);
    this.reserved = first;
  }

  /** Resolves when `bytes` more may go out; rejects (share_expired) when the link has no more. */
  async pass(bytes: number): Promise<void> {
    while (this.sent + bytes > this.reserved) {
      if (this.finished) throw new Error('the response is over');
      this.ahead();
      await this.pending;
    }
    this.sent += bytes;
    if (this.reserved - this.sent < this.meter.step) this.ahead();
  }

  /** Gives back what was reserved and not sent (after a reservation still under way settles). */
  async finish(): Promise<void> {
    this.finished = true;
    await this.pending?.catch(() => undefined);
    const unsent = this.reserved - this.sent;
    this.reserved = this.sent;
    if (unsent > 0) await this.meter.release(unsent);
  }

  private ahead(): void {
    if (this.pending || this.finished || this.reserved >= this.length) return;
    const more = Math.min(this.length - this.reserved, this.meter.step);
    const pending = this.meter.reserve(more).then(
      () => {
        this.reserved += more;
        this.pending = null;
      },
      (error: unknown) => {
        this.pending = null;
        throw error;
      },
    );
    this.pending = pending;
    // pass() sees a failure (it awaits this); one reserved ahead that nobody waits for is harmless.
    pending.catch(() => undefined);
  }
}
