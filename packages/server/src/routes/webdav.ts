import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Usage } from '@dfs/shared';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';
import {
  activeLock,
  DAV_NS,
  type DavResponse,
  escapeXml,
  MULTISTATUS_HEAD,
  MULTISTATUS_TAIL,
  type PropName,
  parseLockinfo,
  parsePropfind,
  parseProppatch,
  proppatchStatus,
  responseXml,
  SUPPORTED_LOCK,
} from '../http/dav-xml.ts';
import { currentUser } from '../plugins/auth.ts';
import type { DavLockRow } from '../repositories/dav-locks.ts';
import type { DavPropertyRow } from '../repositories/dav-properties.ts';
import type { FileRow, FileRowWithSha1 } from '../repositories/files.ts';
import { locksCovering, parseTimeout } from '../services/dav-locks.ts';
import { mtimeFromSeconds } from '../services/mtime.ts';
import type { DavResource } from '../services/webdav.ts';

/** Every method of RFC 4918 classes 1 and 2. */
const ALLOW = 'OPTIONS, GET, HEAD, PROPFIND, PROPPATCH, PUT, MKCOL, DELETE, COPY, MOVE, LOCK, UNLOCK';
/** A multistatus up to this size is sent as measured; a larger one is made again as it is sent. */
const KEEP_ANSWER_BYTES = 4 * 1024 * 1024;
/** Writing a multistatus yields to other requests after this many bytes of it. */
const TURN_BYTES = 1024 * 1024;

/** The decoded name segments of a /dav/ URL; `..` and empty segments are refused. */
export function davPath(url: string): string[] {
  const raw = url.split('?')[0]!.replace(/^\/dav\/?/, '');
  const segments = raw.split('/').filter((s) => s !== '');
  return segments.map((s) => {
    let name: string;
    try {
      name = decodeURIComponent(s);
    } catch {
      throw new HttpError('bad_request', 'the path is not valid percent-encoded UTF-8');
    }
    if (name === '.' || name === '..' || name.includes('/'))
      throw new HttpError('bad_request', `bad path segment "${name}"`);
    return name;
  });
}

/** A request's XML body, whatever Content-Type it came with (some clients send none). */
async function xmlBody(request: FastifyRequest, limit: number): Promise<string | undefined> {
  const body = request.body as unknown;
  if (!body || typeof (body as Readable).read !== 'function') return undefined;
  const parts: Buffer[] = [];
  let length = 0;
  for await (const piece of body as Readable) {
    length += (piece as Buffer).length;
    if (length > limit) throw new HttpError('payload_too_large', `an XML body may be at most ${limit} bytes`);
    parts.push(piece as Buffer);
  }
  return Buffer.concat(parts).toString('utf8');
}

/**
 * Whether a COPY or MOVE `Destination` names this server (RFC 4918 §9.8.5: 502 for another).
 * This server is the request's own origin (the Host, or X-Forwarded-Host and -Proto when
 * DFS_TRUST_PROXY trusts the proxy that sent them) or DFS_PUBLIC_URL. A proxy that forwards a
 * host without its port (nginx's `$host`) leaves the port unknown: then any port of that host
 * and scheme is taken as this server.
 */
export function isThisServer(target: URL, request: FastifyRequest, publicUrl: string | null): boolean {
  if (publicUrl && target.origin === new URL(publicUrl).origin) return true;
  let own: URL;
  try {
    own = new URL(`${request.protocol}://${request.host}`);
  } catch {
    return false;
  }
  if (target.origin === own.origin) return true;
  const forwarded = request.headers['x-forwarded-host'];
  const proxied = typeof forwarded === 'string' && request.host === forwarded.split(',').at(-1)?.trim();
  return (
    proxied &&
    !/:\d+$/.test(request.host) &&
    target.protocol === own.protocol &&
    target.hostname === own.hostname
  );
}

function hrefOf(path: string[], collection: boolean): string {
  const encoded = path.map((s) => encodeURIComponent(s)).join('/');
  return `/dav/${encoded}${collection && path.length > 0 ? '/' : ''}`;
}

const davProp = (name: string): PropName => ({ ns: DAV_NS, name });
const LIVE: PropName[] = [
  'supportedlock',
  'lockdiscovery',
  'displayname',
  'resourcetype',
  'getcontentlength',
  'getcontenttype',
  'getlastmodified',
  'creationdate',
  'getetag',
].map(davProp);
const QUOTA: PropName[] = ['quota-available-bytes', 'quota-used-bytes'].map(davProp);

/**
 * WebDAV at /dav/ (RFC 4918), for mounting dfs as a drive (rclone, Finder, Windows, davfs2).
 * Authenticated with HTTP Basic: the username and an app password (never the account password).
 * This part serves reading: OPTIONS, PROPFIND (depth 0 and 1), GET and HEAD with Range.
 */
export async function webdavRoutes(app: AppInstance): Promise<void> {
  const { dav, files, downloads, davLocks } = app.services;
  app.addHttpMethod('PROPFIND', { hasBody: true });
  app.addHttpMethod('PROPPATCH', { hasBody: true });
  app.addHttpMethod('LOCK', { hasBody: true });
  app.addHttpMethod('UNLOCK');
  app.addHttpMethod('MKCOL', { hasBody: true });
  app.addHttpMethod('COPY');
  app.addHttpMethod('MOVE');
  // Bodies are left unread for their handler: a PUT streams its own, and XML bodies (which some
  // clients send without a Content-Type) are read by xmlBody.
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  // Clients ask for credentials only when challenged.
  app.addHook('onSend', async (_request, reply, payload) => {
    if (reply.statusCode === 401) reply.header('WWW-Authenticate', 'Basic realm="dfs", charset="UTF-8"');
    reply.header('DAV', '1, 2');
    return payload;
  });

  const bounds = dav.bounds;
  const key = (p: PropName) => `${p.ns}\n${p.name}`;
  /** What a PROPFIND answer needs beyond a resource's row, read once per request. */
  interface PropContext {
    wanted: PropName[] | 'all' | 'names';
    /** The user's live locks. */
    locks: DavLockRow[];
    /** Dead properties by entry id. */
    dead: Map<string, DavPropertyRow[]>;
    /** The user's usage, when the root's quota properties are asked for. */
    usage: Usage | null;
  }
  /** One resource's answer; `sha1` is its content's, for files. */
  const props = (resource: DavResource, sha1: string | null, context: PropContext): DavResponse => {
    const { wanted, locks } = context;
    const row = resource.kind === 'root' ? null : resource.row;
    const collection = resource.kind !== 'file';
    const values = new Map<string, string>();
    const set = (name: string, xml: string) => values.set(key(davProp(name)), xml);
    set('displayname', escapeXml(row?.name ?? ''));
    set('resourcetype', collection ? '<D:collection/>' : '');
    if (row) {
      set('creationdate', new Date(Number(row.created_at)).toISOString());
      set('getlastmodified', new Date(Number(row.mtime ?? row.updated_at)).toUTCString());
    }
    set('supportedlock', SUPPORTED_LOCK);
    set(
      'lockdiscovery',
      locksCovering(locks, resource.path)
        .map((l) => activeLock({ ...l, href: hrefOf(l.path === '' ? [] : l.path.split('/'), false) }))
        .join(''),
    );
    if (resource.kind === 'file' && row) {
      set('getcontentlength', String(row.size));
      set('getcontenttype', escapeXml(row.mime ?? 'application/octet-stream'));
      if (sha1) set('getetag', escapeXml(`"${sha1}"`));
    }
    const names = resource.kind === 'root' ? [...LIVE, ...QUOTA] : [...LIVE];
    if (resource.kind === 'root' && context.usage) {
      const usage = context.usage;
      set('quota-used-bytes', String(usage.usedBytes));
      if (usage.quotaBytes !== null)
        set('quota-available-bytes', String(Math.max(0, usage.quotaBytes - usage.usedBytes)));
    }
    // Dead properties, as clients set them (PROPPATCH).
    for (const dead of (row && context.dead.get(row.id)) || []) {
      const prop = { ns: dead.ns, name: dead.name };
      values.set(key(prop), dead.value);
      names.push(prop);
    }
    const href = hrefOf(resource.path, collection);
    if (wanted === 'names') {
      return {
        href,
        found: names.filter((p) => values.has(key(p))).map((prop) => ({ prop, xml: '' })),
        missing: [],
      };
    }
    const asked = wanted === 'all' ? names.filter((p) => values.has(key(p))) : wanted;
    return {
      href,
      found: asked.filter((p) => values.has(key(p))).map((prop) => ({ prop, xml: values.get(key(prop))! })),
      missing: asked.filter((p) => !values.has(key(p))),
    };
  };

  /**
   * PROPPATCH: all instructions or none (RFC 4918 §9.2). DAV: properties are the server's own
   * (403); anything else is a dead property, stored as the client wrote it.
   */
  const proppatch = async (request: FastifyRequest, reply: FastifyReply) => {
    const user = currentUser(request);
    const updates = parseProppatch(await xmlBody(request, bounds.xmlBodyBytes));
    await writable(request, [{ path: davPath(request.url), deep: false }]);
    const resource = await dav.mustResolve(user.id, davPath(request.url));
    const protectedProp = (p: PropName) => p.ns === DAV_NS || resource.kind === 'root';
    let results = updates.map((u) => ({ prop: u.prop, status: '200 OK' }));
    if (updates.some((u) => protectedProp(u.prop))) {
      results = updates.map((u) => ({
        prop: u.prop,
        status: protectedProp(u.prop) ? '403 Forbidden' : '424 Failed Dependency',
      }));
    } else if (resource.kind !== 'root') {
      // Past a bound (services/dav-limits.ts), nothing is stored: 507 for what would not fit.
      const overBound = await dav.patchProperties(user.id, resource.row.id, updates);
      if (overBound.some(Boolean))
        results = updates.map((u, i) => ({
          prop: u.prop,
          status: overBound[i] ? '507 Insufficient Storage' : '424 Failed Dependency',
        }));
    }
    return reply
      .status(207)
      .type('application/xml; charset=utf-8')
      .send(proppatchStatus(hrefOf(resource.path, resource.kind !== 'file'), results));
  };

  const propfind = async (request: FastifyRequest, reply: FastifyReply) => {
    const user = currentUser(request);
    const depth = String(request.headers.depth ?? 'infinity').toLowerCase();
    if (depth !== '0' && depth !== '1') {
      return reply
        .status(403)
        .type('application/xml; charset=utf-8')
        .send(
          '<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>',
        );
    }
    const ask = parsePropfind(await xmlBody(request, bounds.xmlBodyBytes), bounds.propfindProps);
    const wanted = ask.kind === 'allprop' ? 'all' : ask.kind === 'propname' ? 'names' : ask.props;
    const resource = await dav.mustResolve(user.id, davPath(request.url));
    const members: Array<{ resource: DavResource; sha1: string | null }> = [];
    if (depth === '1' && resource.kind !== 'file') {
      for (const child of (await dav.children(user.id, resource)) as FileRowWithSha1[]) {
        members.push({
          resource: { kind: child.kind, path: [...resource.path, child.name], row: child as FileRow },
          sha1: child.sha1,
        });
      }
    }
    const all = [
      { resource, sha1: resource.kind === 'file' ? await dav.sha1Of(user.id, resource.row) : null },
      ...members,
    ];
    const asks = (test: (p: PropName) => boolean) =>
      wanted === 'all' || (Array.isArray(wanted) && wanted.some(test));
    const context: PropContext = {
      wanted,
      locks: await davLocks.live(user.id),
      dead:
        wanted === 'names' || asks((p) => p.ns !== DAV_NS)
          ? await dav.deadPropertiesOf(
              all.flatMap((r) => (r.resource.kind === 'root' ? [] : [r.resource.row.id])),
            )
          : new Map(),
      usage:
        resource.kind === 'root' && asks((p) => p.ns === DAV_NS && p.name.startsWith('quota'))
          ? await dav.usage(user.id)
          : null,
    };
    const answer = (r: (typeof all)[number]) => Buffer.from(responseXml(props(r.resource, r.sha1, context)));
    // The answer is measured before its first byte is sent, so a status can still say it is too
    // large (507). A small answer is sent as measured; a larger one is written again one response
    // at a time, never whole in memory. Either way the event loop gets a turn every TURN_BYTES.
    let length = Buffer.byteLength(MULTISTATUS_HEAD) + Buffer.byteLength(MULTISTATUS_TAIL);
    let kept: Buffer[] | null = [];
    let sinceTurn = 0;
    for (const r of all) {
      const xml = answer(r);
      length += xml.length;
      if (length > bounds.answerBytes)
        throw new HttpError(
          'insufficient_storage',
          `the answer would be more than ${bounds.answerBytes} bytes: ask for fewer properties, or list with Depth: 0`,
        );
      if (kept && length <= KEEP_ANSWER_BYTES) kept.push(xml);
      else kept = null;
      sinceTurn += xml.length;
      if (sinceTurn >= TURN_BYTES) {
        sinceTurn = 0;
        await nextTurn();
      }
    }
    const measured = kept;
    async function* body() {
      yield Buffer.from(MULTISTATUS_HEAD);
      if (measured) yield* measured;
      else {
        let written = 0;
        for (const r of all) {
          const xml = answer(r);
          yield xml;
          written += xml.length;
          if (written >= TURN_BYTES) {
            written = 0;
            await nextTurn();
          }
        }
      }
      yield Buffer.from(MULTISTATUS_TAIL);
    }
    return reply
      .status(207)
      .type('application/xml; charset=utf-8')
      .header('content-length', length)
      .send(Readable.from(body(), { objectMode: false }));
  };

  const read = async (request: FastifyRequest, reply: FastifyReply) => {
    const user = currentUser(request);
    const resource = await dav.mustResolve(user.id, davPath(request.url));
    if (resource.kind !== 'file') {
      return reply
        .status(405)
        .header('Allow', 'OPTIONS, PROPFIND')
        .send({
          error: { code: 'bad_request', message: 'a collection has no content; PROPFIND lists it' },
        });
    }
    return downloads.send(request, reply, await files.downloadable(user.id, resource.row.id));
  };

  const options = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.status(200).header('Allow', ALLOW).header('MS-Author-Via', 'DAV').send();

  const notYet = async (request: FastifyRequest, reply: FastifyReply) =>
    reply
      .status(405)
      .header('Allow', ALLOW)
      .send({
        error: { code: 'method_not_allowed', message: `${request.method} is not served on /dav/` },
      });

  /** The resource's ETag as GET answers it (files only), for `If` header entity tags. */
  const etagOf = async (userId: string, path: string[]) => {
    const found = await dav.resolve(userId, path);
    if (found?.kind !== 'file') return null;
    const sha1 = await dav.sha1Of(userId, found.row);
    return sha1 ? `"${sha1}"` : null;
  };
  /** A write must satisfy the `If` header (412) and name every lock in its way (423). */
  const writable = (request: FastifyRequest, paths: Array<{ path: string[]; deep: boolean }>) => {
    const userId = currentUser(request).id;
    const header = request.headers.if;
    return davLocks.assertWritable(
      userId,
      davPath(request.url),
      paths,
      typeof header === 'string' ? header : undefined,
      (path) => etagOf(userId, path),
    );
  };

  const lock = async (request: FastifyRequest, reply: FastifyReply) => {
    const user = currentUser(request);
    const path = davPath(request.url);
    const body = await xmlBody(request, bounds.xmlBodyBytes);
    const timeoutS = parseTimeout(request.headers.timeout as string | undefined);
    const header = request.headers.if;
    let row: Awaited<ReturnType<typeof davLocks.lock>>;
    let created = false;
    if (!body || body.trim() === '') {
      row = await davLocks.refresh(user.id, path, typeof header === 'string' ? header : undefined, timeoutS);
    } else {
      const info = parseLockinfo(body, bounds.lockOwnerBytes);
      const depthHeader = String(request.headers.depth ?? 'infinity').toLowerCase();
      if (depthHeader !== '0' && depthHeader !== 'infinity')
        throw new HttpError('bad_request', 'a lock has Depth 0 or infinity');
      if (typeof header === 'string') await writable(request, [{ path, deep: false }]);
      row = await davLocks.lock(user.id, path, { ...info, depth: depthHeader, timeoutS });
      // Locking a URL with nothing at it makes an empty file there (RFC 4918 §7.3).
      if (!(await dav.resolve(user.id, path))) {
        try {
          await dav.put(user.id, path, Readable.from([]), 0);
          created = true;
        } catch (error) {
          await davLocks.withdraw(row.token);
          throw error;
        }
      }
    }
    const href = hrefOf(path, false);
    return reply
      .status(created ? 201 : 200)
      .header('Lock-Token', `<${row.token}>`)
      .type('application/xml; charset=utf-8')
      .send(
        `<?xml version="1.0" encoding="utf-8"?>\n<D:prop xmlns:D="DAV:"><D:lockdiscovery>${activeLock({ ...row, href })}</D:lockdiscovery></D:prop>`,
      );
  };

  const unlock = async (request: FastifyRequest, reply: FastifyReply) => {
    const token = request.headers['lock-token'];
    await davLocks.unlock(
      currentUser(request).id,
      davPath(request.url),
      typeof token === 'string' ? token : undefined,
    );
    return reply.status(204).send();
  };

  const put = async (request: FastifyRequest, reply: FastifyReply) => {
    await writable(request, [{ path: davPath(request.url), deep: false }]);
    const length = Number(request.headers['content-length']);
    // Nextcloud's and ownCloud's clients (and rclone) send the source's time, in seconds.
    const mtimeHeader = request.headers['x-oc-mtime'];
    const mtime =
      typeof mtimeHeader === 'string' ? mtimeFromSeconds(mtimeHeader, Date.now()) : undefined;
    const created = await dav.put(
      currentUser(request).id,
      davPath(request.url),
      request.body as Readable,
      Number.isSafeInteger(length) ? length : null,
      mtime,
    );
    if (mtime !== undefined) reply.header('X-OC-MTime', 'accepted');
    return reply.status(created ? 201 : 204).send();
  };

  const mkcol = async (request: FastifyRequest, reply: FastifyReply) => {
    // A body would be an extended MKCOL (RFC 5689), which is not supported.
    if (Number(request.headers['content-length'] ?? 0) > 0 || request.headers['transfer-encoding']) {
      (request.body as Readable | undefined)?.resume?.();
      return reply
        .status(415)
        .send({ error: { code: 'unsupported_media_type', message: 'MKCOL takes no body' } });
    }
    await writable(request, [{ path: davPath(request.url), deep: false }]);
    await dav.mkcol(currentUser(request).id, davPath(request.url));
    return reply.status(201).send();
  };

  const remove = async (request: FastifyRequest, reply: FastifyReply) => {
    const path = davPath(request.url);
    await writable(request, [{ path, deep: true }]);
    await dav.delete(currentUser(request).id, path);
    await davLocks.follow(currentUser(request).id, path, null);
    return reply.status(204).send();
  };

  const transfer = (op: 'move' | 'copy') => async (request: FastifyRequest, reply: FastifyReply) => {
    const destination = request.headers.destination;
    if (typeof destination !== 'string')
      throw new HttpError('bad_request', 'a Destination header is required');
    let target: URL;
    try {
      target = new URL(destination, `${request.protocol}://${request.host}`);
    } catch {
      throw new HttpError('bad_request', 'the Destination header is not a URL');
    }
    if (!isThisServer(target, request, app.config.publicUrl)) {
      throw new HttpError('bad_gateway', 'the Destination is on another server; copy through the client');
    }
    if (target.pathname !== '/dav' && !target.pathname.startsWith('/dav/')) {
      throw new HttpError('forbidden', 'the Destination is outside /dav/');
    }
    const overwrite = String(request.headers.overwrite ?? 'T').toUpperCase() !== 'F';
    const depth0 = String(request.headers.depth ?? 'infinity') === '0';
    const from = davPath(request.url);
    const to = davPath(target.pathname);
    await writable(
      request,
      op === 'move'
        ? [
            { path: from, deep: true },
            { path: to, deep: true },
          ]
        : [{ path: to, deep: true }],
    );
    const created = await dav.transfer(
      currentUser(request).id,
      op,
      davPath(request.url),
      davPath(target.pathname),
      {
        overwrite,
        depth0,
      },
    );
    if (op === 'move') await davLocks.follow(currentUser(request).id, from, null);
    return reply.status(created ? 201 : 204).send();
  };

  // WebDAV is its own protocol (RFC 4918), not part of the JSON API's OpenAPI document.
  const schema = { hide: true };
  for (const url of ['/dav', '/dav/', '/dav/*']) {
    const config = { access: 'user' as const };
    app.route({ method: 'OPTIONS', url, schema, config: { access: 'public' }, handler: options });
    app.route({ method: 'PROPFIND', url, schema, config, handler: propfind });
    app.route({ method: 'PROPPATCH', url, schema, config, handler: proppatch });
    app.route({ method: ['GET', 'HEAD'], url, schema, config, handler: read, exposeHeadRoute: false });
    // A file's bytes, whatever type the client gives them: streamed, not a small body.
    app.route({ method: 'PUT', url, schema, config: { ...config, streamedBody: true }, handler: put });
    app.route({ method: 'MKCOL', url, schema, config, handler: mkcol });
    app.route({ method: 'DELETE', url, schema, config, handler: remove });
    app.route({ method: 'COPY', url, schema, config, handler: transfer('copy') });
    app.route({ method: 'MOVE', url, schema, config, handler: transfer('move') });
    app.route({ method: 'LOCK', url, schema, config, handler: lock });
    app.route({ method: 'UNLOCK', url, schema, config, handler: unlock });
    app.route({ method: ['POST', 'PATCH'], url, schema, config, handler: notYet });
  }
}
