import type { ApiErrorBody, ErrorCode } from '@dfs/shared';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../errors.ts';

/** Fastify's own 4xx errors, named in the API's vocabulary. */
const STATUS_CODES: Record<number, ErrorCode> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  416: 'range_not_satisfiable',
  429: 'rate_limited',
};

function body(code: ErrorCode, message: string, details: Record<string, unknown> = {}): ApiErrorBody {
  return { error: { ...details, code, message } };
}

/** The one place errors become HTTP: JSON bodies always, internals only in the log. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
    if (error instanceof HttpError) {
      if (error.status >= 500) request.log.warn({ err: error }, error.message);
      // Busy and rate-limited answers say when to come back (RFC 9110 §10.2.3).
      const retryAfter = error.details.retryAfter;
      if (typeof retryAfter === 'number') reply.header('Retry-After', String(Math.ceil(retryAfter)));
      return reply.status(error.status).send(body(error.code, error.message, error.details));
    }
    if ('validation' in error && error.validation) {
      return reply
        .status(400)
        .send(body('bad_request', `${error.validationContext ?? 'request'} ${error.message}`));
    }
    // The client went away mid-body (a paused upload, a closed tab): nothing broke here, and no
    // one is left to read an answer.
    if ((error as { code?: string }).code === 'ECONNRESET' && request.raw.destroyed) {
      request.log.info({ err: error }, 'client closed the request');
      return reply.status(400).send(body('bad_request', 'the request was aborted by the client'));
    }
    const status = error.statusCode ?? 500;
    const code = STATUS_CODES[status];
    if (status < 500 && code) {
      return reply.status(status).send(body(code, error.message));
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.status(500).send(body('internal', 'internal server error'));
  });
}

/** Answers a request no route took, or declines (false) so that it gets the JSON 404. */
export type NotFoundFallback = (request: FastifyRequest, reply: FastifyReply) => boolean;

/**
 * What no route answers: the fallback's (the web app's shell for its client-side routes), else a
 * JSON 404. Routes always win: a fallback only ever sees paths that nothing else serves, so a
 * WebDAV or API path can never be answered with the web app.
 */
export function registerNotFound(app: FastifyInstance, fallback?: NotFoundFallback): void {
  app.setNotFoundHandler((request, reply) => {
    if (fallback?.(request, reply)) return reply;
    return reply
      .status(404)
      .send(body('not_found', `no route for ${request.method} ${request.url.split('?')[0]}`));
  });
}
