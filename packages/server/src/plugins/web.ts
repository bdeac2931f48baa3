import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import type { NotFoundFallback } from './errors.ts';

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
function webHeaders(res: { setHeader(name: string, value: string): unknown }, file: string): void {
  // Vite puts a content hash in every asset's name, so one URL never changes; the shell must be
  // asked for again each time, or a deploy would leave browsers on old asset names.
  res.setHeader(
    'cache-control',
    file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
  );
  res.setHeader('content-security-policy', WEB_CSP);
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
}

/**
 * Paths the server owns. An unknown path under one of them is a 404 of that protocol, never the
 * web app: a WebDAV client or an API script must not read an HTML page as a file.
 */
const SERVER_PREFIXES = ['/api/', '/dav/', '/remote.php/', '/ocs/', '/index.php/'];
const SERVER_PATHS = new Set(['/api', '/dav', '/healthz', '/readyz', '/metrics', '/status.php']);

/** Whether a path no route matched is one of the web app's client-side routes (/files/…, /s/…). */
export function isClientRoute(path: string): boolean {
  if (SERVER_PATHS.has(path) || SERVER_PREFIXES.some((prefix) => path.startsWith(prefix))) return false;
  // A name with an extension is a file the build does not have (a stale asset): a 404, not HTML.
  return !(path.split('/').pop() ?? '').includes('.');
}

/**
 * Serves the built SPA and answers with its shell the GET/HEAD of a client-side route that no
 * server route takes (the not-found fallback: routes, WebDAV's included, always come first).
 * Answers undefined when the web app is not built.
 */
export async function registerWeb(
  app: FastifyInstance,
  root = WEB_DIST,
): Promise<NotFoundFallback | undefined> {
  if (!existsSync(root)) {
    app.log.warn('web app not built (pnpm --filter @dfs/web build); serving the API only');
    return undefined;
  }
  await app.register(fastifyStatic, {
    root,
    wildcard: false,
    index: 'index.html',
    // Its own max-age=0 would replace the cache policy webHeaders sets per file.
    cacheControl: false,
    setHeaders: webHeaders,
  });
  return (request, reply) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return false;
    if (!isClientRoute(request.url.split('?')[0] ?? '/')) return false;
    void reply.sendFile('index.html');
    return true;
  };
}
