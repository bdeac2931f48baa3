import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/**
 * packages/web/dist, found from the server package's root: this module runs from src/plugins/
 * (tsx, tests) or bundled into dist/main.js (production), at different depths.
 */
function webDist(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return path.resolve(dir, '../web/dist');
}

const WEB_DIST = webDist();

/**
 * The SPA's policy. Scripts only from our own files: an injected <script> or inline handler never
 * runs. 'wasm-unsafe-eval' lets hash-wasm compile its WebAssembly (the hash workers are same-origin
 * files, which get this policy from their own response) without allowing eval. Naive UI injects
 * <style> tags at run time, so inline styles (never inline scripts) are allowed.
 */
const WEB_CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "object-src 'none'",
].join('; ');

/**
 * Set on every file of the web app (HTML and assets) but not on API answers, which keep their own
 * headers (downloads send a sandbox CSP of their own). No framing: clickjacking of the file browser
 * and share pages. No referrer: share tokens are in /s/ URLs.
 */
function securityHeaders(res: { setHeader(name: string, value: string): unknown }): void {
  res.setHeader('content-security-policy', WEB_CSP);
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
}

/** Serves the built SPA; unknown non-API paths get index.html so client routes like /s/:token load. */
export async function registerWeb(app: FastifyInstance, root = WEB_DIST): Promise<void> {
  if (!existsSync(root)) {
    app.log.warn('web app not built (pnpm --filter @dfs/web build); serving the API only');
    return;
  }
  await app.register(fastifyStatic, {
    root,
    wildcard: false,
    index: 'index.html',
    setHeaders: securityHeaders,
  });
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const isApi = path.startsWith('/api/') || path === '/healthz' || path === '/readyz';
    if (request.method === 'GET' && !isApi && !path.includes('.') && path !== '/') {
      return reply.sendFile('index.html');
    }
  });
}
