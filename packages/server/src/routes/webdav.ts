import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';
import {
  activeLock,
  DAV_NS,
  type DavResponse,
  escapeXml,
  multistatus,
  type PropName,
  parseLockinfo,
  parsePropfind,
  parseProppatch,
  proppatchStatus,
  SUPPORTED_LOCK,
} from '../http/dav-xml.ts';
import { currentUser } from '../plugins/auth.ts';
import type { DavLockRow } from '../repositories/dav-locks.ts';
import type { FileRow } from '../repositories/files.ts';
import { locksCovering, parseTimeout } from '../services/dav-locks.ts';
import type { DavResource } from '../services/webdav.ts';

/** Every method of RFC 4918 classes 1 and 2. */
const ALLOW = 'OPTIONS, GET, HEAD, PROPFIND, PROPPATCH, PUT, MKCOL, DELETE, COPY, MOVE, LOCK, UNLOCK';
const XML_BODY_LIMIT = 1024 * 1024;

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
async function xmlBody(request: FastifyRequest): Promise<string | undefined> {
  const body = request.body as unknown;
  if (!body || typeof (body as Readable).read !== 'function') return undefined;
  const parts: Buffer[] = [];
  let length = 0;
  for await (const piece of body as Readable) {
    length += (piece as Buffer).length;
    if (length > XML_BODY_LIMIT) throw new HttpError('payload_too_large', 'an XML body may be at most 1 MiB');
    parts.push(piece as Buffer);
  }
  return Buffer.concat(parts).toString('utf8');
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

  const key = (p: PropName) => `${p.ns}\n${p.name}`;
  const props = async (
    userId: string,
    resource: DavResource,
    wanted: PropName[] | 'all' | 'names',
    /** The user's live locks, read once per request. */
    locks: DavLockRow[],
  ): Promise<DavResponse> => {
    const row = resource.kind === 'root' ? null : resource.row;
    const collection = resource.kind !== 'file';
    const values = new Map<string, string>();
    const set = (name: string, xml: string) => values.set(key(davProp(name)), xml);
    set('displayname', escapeXml(row?.name ?? ''));
    set('resourcetype', collection ? '<D:collection/>' : '');
    if (row) {
      set('creationdate', new Date(Number(row.created_at)).toISOString());
      set('getlastmodified', new Date(Number(row.updated_at)).toUTCString());
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
      const sha1 = await dav.sha1Of(userId, row);
      if (sha1) set('getetag', escapeXml(`"${sha1}"`));
    }
    const names = resource.kind === 'root' ? [...LIVE, ...QUOTA] : [...LIVE];
    if (
      resource.kind === 'root' &&
      (wanted === 'all' ||
        (Array.isArray(wanted) && wanted.some((p) => p.ns === DAV_NS && p.name.startsWith('quota'))))
    ) {
      const usage = await dav.usage(userId);
      set('quota-used-bytes', String(usage.usedBytes));
      if (usage.quotaBytes !== null)
        set('quota-available-bytes', String(Math.max(0, usage.quotaBytes - usage.usedBytes)));
    }
    // Dead properties, as clients set them (PROPPATCH).
    if (row) {
      for (const dead of await dav.deadProperties(row.id)) {
        const prop = { ns: dead.ns, name: dead.name };
        values.set(key(prop), dead.value);
        names.push(prop);
      }
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
    const updates = parseProppatch(await xmlBody(request));
    await writable(request, [{ path: davPath(request.url), deep: false }]);
    const resource = await dav.mustResolve(user.id, davPath(request.url));
    const protectedProp = (p: PropName) => p.ns === DAV_NS || resource.kind === 'root';
    const refused = updates.some((u) => protectedProp(u.prop));
    const results = updates.map((u) => ({
      prop: u.prop,
      status: refused ? (protectedProp(u.prop) ? '403 Forbidden' : '424 Failed Dependency') : '200 OK',
    }));
    if (!refused && resource.kind !== 'root') {
      await dav.patchProperties(resource.row.id, updates);
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
    const ask = parsePropfind(await xmlBody(request));
    const wanted = ask.kind === 'allprop' ? 'all' : ask.kind === 'propname' ? 'names' : ask.props;
    const resource = await dav.mustResolve(user.id, davPath(request.url));
    const locks = await davLocks.live(user.id);
    const responses = [await props(user.id, resource, wanted, locks)];
    if (depth === '1' && resource.kind !== 'file') {
      for (const child of await dav.children(user.id, resource)) {
        const member: DavResource = {
          kind: child.kind,
          path: [...resource.path, child.name],
          row: child as FileRow,
        };
        responses.push(await props(user.id, member, wanted, locks));
      }
    }
    return reply.status(207).type('application/xml; charset=utf-8').send(multistatus(responses));
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
    const body = await xmlBody(request);
    const timeoutS = parseTimeout(request.headers.timeout as string | undefined);
    const header = request.headers.if;
    let row: Awaited<ReturnType<typeof davLocks.lock>>;
    let created = false;
    if (!body || body.trim() === '') {
      row = await davLocks.refresh(user.id, path, typeof header === 'string' ? header : undefined, timeoutS);
    } else {
      const info = parseLockinfo(body);
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
    const created = await dav.put(
      currentUser(request).id,
      davPath(request.url),
      request.body as Readable,
      Number.isSafeInteger(length) ? length : null,
    );
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
    app.route({ method: 'PUT', url, schema, config, handler: put });
    app.route({ method: 'MKCOL', url, schema, config, handler: mkcol });
    app.route({ method: 'DELETE', url, schema, config, handler: remove });
    app.route({ method: 'COPY', url, schema, config, handler: transfer('copy') });
    app.route({ method: 'MOVE', url, schema, config, handler: transfer('move') });
    app.route({ method: 'LOCK', url, schema, config, handler: lock });
    app.route({ method: 'UNLOCK', url, schema, config, handler: unlock });
    app.route({ method: ['POST', 'PATCH'], url, schema, config, handler: notYet });
  }
}
