import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route reads its body as a stream of file bytes, of any content type (a WebDAV PUT),
     * after authentication: it keeps the request timeout, not the small-body deadline.
     */
    streamedBody?: boolean;
  }
}

/** Bodies that are streams of an authenticated upload; everything else is small and quick. */
const STREAMED_BODY =
  /^(application\/octet-stream|application\/offset\+octet-stream|multipart\/form-data)\b/i;

/**
 * Slowloris defences that Fastify's whole-request timeout (long, for big chunk uploads) does not
 * give: a cap on open connections per client address, and a short deadline for small bodies, so
 * a client dripping a JSON body one byte at a time loses its socket in seconds, not minutes.
 * Streamed upload bodies are only read after authentication and keep the request timeout.
 */
export function registerHttpLimits(
  app: FastifyInstance,
  options: { maxConnectionsPerIp: number; bodyTimeoutMs: number },
): void {
  if (options.maxConnectionsPerIp > 0) {
    const open = new Map<string, number>();
    app.server.on('connection', (socket: Socket) => {
      const address = socket.remoteAddress ?? '';
      const count = (open.get(address) ?? 0) + 1;
      if (count > options.maxConnectionsPerIp) {
        socket.destroy();
        return;
      }
      open.set(address, count);
      socket.once('close', () => {
        const left = (open.get(address) ?? 1) - 1;
        if (left <= 0) open.delete(address);
        else open.set(address, left);
      });
    });
  }
  // Headers too must arrive promptly (Node's default is a minute).
  app.server.headersTimeout = Math.min(app.server.headersTimeout || 60_000, options.bodyTimeoutMs + 5_000);

  // An error answered before the body was read to its end (too big, over the quota): the rest
  // is not read, so the connection cannot carry another request and closes after the answer.
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode >= 400 && hasBody(request) && !request.raw.complete) {
      reply.header('connection', 'close');
    }
    return payload;
  });

  app.addHook('preParsing', async (request, _reply, payload) => {
    if (request.routeOptions.config.streamedBody) return payload;
    if (STREAMED_BODY.test(request.headers['content-type'] ?? '')) return payload;
    // Only a body can be slow. Without one (a GET, a download) nothing reads the request to its
    // end, so the timer would fire mid-response and cut a long download.
    if (!hasBody(request)) return payload;
    const timer = setTimeout(() => {
      request.log.info('request body too slow; closing the connection');
      // Injected requests (tests) have a stand-in socket without destroy().
      const socket = request.raw.socket as { destroy?: () => void } | null | undefined;
      if (typeof socket?.destroy === 'function') socket.destroy();
    }, options.bodyTimeoutMs);
    timer.unref();
    const clear = () => clearTimeout(timer);
    payload.once('end', clear);
    payload.once('close', clear);
    payload.once('error', clear);
    return payload;
  });
}

function hasBody(request: FastifyRequest): boolean {
  const length = Number(request.headers['content-length'] ?? 0);
  return length > 0 || request.headers['transfer-encoding'] !== undefined;
}
