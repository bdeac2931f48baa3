import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

const WEB_DIST = fileURLToPath(new URL('../../../web/dist', import.meta.url));

/** Serves the built SPA; unknown non-API paths get index.html so client routes like /s/:token load. */
export async function registerWeb(app: FastifyInstance, root = WEB_DIST): Promise<void> {
  if (!existsSync(root)) {
    app.log.warn('web app not built (pnpm --filter @dfs/web build); serving the API only');
    return;
  }
  await app.register(fastifyStatic, { root, wildcard: false, index: 'index.html' });
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const isApi = path.startsWith('/api/') || path === '/healthz' || path === '/readyz';
    if (request.method === 'GET' && !isApi && !path.includes('.') && path !== '/') {
      return reply.sendFile('index.html');
    }
  });
}
