import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import { HttpError } from '../errors.ts';
import type { Metrics } from '../services/operations/metrics.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Opens the DFS_METRICS_PORT listener (none without the setting) and gives its address. Called
     * after `listen`, by whatever serves: an app built for a command-line job must not take the
     * port from the running server.
     */
    listenMetrics: () => Promise<AddressInfo | null>;
  }
}

/**
 * Counts and times every response, and serves `GET /metrics`: on the main listener to a caller
 * with DFS_METRICS_TOKEN, and without a token on the DFS_METRICS_PORT listener, which is meant to
 * be reachable only from the monitoring network.
 */
export async function registerMetrics(
  app: FastifyInstance,
  metrics: Metrics,
  config: Pick<Config, 'metricsToken' | 'metricsPort' | 'host'>,
): Promise<void> {
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, never the URL: paths carry file names and ids, which would make a
    // series per file.
    metrics.observeRequest(
      request.method,
      request.routeOptions.url,
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
  });

  const expected = config.metricsToken === null ? null : digest(config.metricsToken);
  app.get('/metrics', { schema: { hide: true }, config: { access: 'public' } }, async (request, reply) => {
    if (expected === null) {
      throw new HttpError(
        'not_found',
        'no route for GET /metrics (set DFS_METRICS_TOKEN or DFS_METRICS_PORT)',
      );
    }
    const header = request.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : '';
    // Digests of equal length, compared in constant time: neither the token's bytes nor its
    // length leak through timing.
    if (!given || !timingSafeEqual(digest(given), expected)) {
      reply.header('www-authenticate', 'Bearer realm="metrics"');
      throw new HttpError('unauthorized', 'metrics need Authorization: Bearer <DFS_METRICS_TOKEN>');
    }
    const { body, contentType } = await metrics.expose();
    return reply.type(contentType).send(body);
  });

  let server: Server | null = null;
  const port = config.metricsPort;
  app.decorate('listenMetrics', async () => {
    if (port === null) return null;
    if (server) return server.address() as AddressInfo;
    server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
        res.end(
          JSON.stringify({ error: { code: 'not_found', message: 'this listener serves GET /metrics only' } }),
        );
        return;
      }
      metrics.expose().then(
        ({ body, contentType }) => {
          res.writeHead(200, { 'content-type': contentType });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        (err: unknown) => {
          app.log.error({ err }, 'could not collect metrics');
          res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
          res.end(JSON.stringify({ error: { code: 'internal', message: 'could not collect metrics' } }));
        },
      );
    });
    const listening = server;
    try {
      await new Promise<void>((resolve, reject) => {
        listening.once('error', reject);
        listening.listen(port, config.host, () => {
          listening.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      server = null;
      throw new Error(`DFS_METRICS_PORT: ${(error as Error).message}`, { cause: error });
    }
    const address = listening.address() as AddressInfo;
    app.log.info({ address }, 'metrics listener ready');
    return address;
  });
  app.addHook('onClose', async () => {
    const closing = server;
    server = null;
    if (!closing) return;
    closing.closeAllConnections();
    await new Promise<void>((resolve) => closing.close(() => resolve()));
  });
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
