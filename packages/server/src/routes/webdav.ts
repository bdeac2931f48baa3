import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Usage } from '@dfs/shared';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';
import {
  activeLock,
  answerOf,
  DAV_NS,
  type DavResponse,
  escapeXml,
  MULTISTATUS_HEAD,
  MULTISTATUS_TAIL,
  NC_NS,
  OC_NS,
  type PropName,
  type PropUpdate,
  parseLockinfo,
  parsePropfind,
  parseProppatch,
  propKey,
  proppatchStatus,
  responseXml,
  SUPPORTED_LOCK,
} from '../http/dav-xml.ts';
import { currentUser } from '../plugins/auth.ts';
import type { DavLockRow } from '../repositories/dav-locks.ts';
import type { DavPropertyRow } from '../repositories/dav-properties.ts';
import { locksCovering, parseTimeout } from '../services/dav-locks.ts';
import { mtimeFromSeconds } from '../services/mtime.ts';
import { canThumbnail } from '../services/thumbnails.ts';
import {
  type DavMember,
  type DavResource,
  entityTag,
  isMountPoint,
  numericFileId,
  ocFileIdOf,
  ocId,
  rootIdOf,
  splitMount,
} from '../services/webdav.ts';

/** Every method of RFC 4918 classes 1 and 2. */
const ALLOW = 'OPTIONS, GET, HEAD, PROPFIND, PROPPATCH, PUT, MKCOL, DELETE, COPY, MOVE, LOCK, UNLOCK';
/**
 * A multistatus up to this size is sent as measured (one reading of the rows: a PROPFIND of
 * 10,000 entries is about 8 MB); a larger one is made again as it is sent.
 */
const KEEP_ANSWER_BYTES = 16 * 1024 * 1024;
/** Writing a multistatus yields to other requests after this many bytes of it. */
const TURN_BYTES = 1024 * 1024;

/** The decoded name segments of a URL under a mount; `..` and empty segments are refused. */
export function davPath(url: string): string[] {
  const pathname = url.split('?')[0]!;
  const raw = splitMount(pathname)?.rest ?? pathname;
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
export async function xmlBody(request: FastifyRequest, limit: number): Promise<string | undefined> {
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

/**
 * A COPY or MOVE `Destination` (a URL, or a path as some clients send it) on this server: `400`
 * without one or when it is not a URL, `502` when it names another server.
 */
export function destinationOf(request: FastifyRequest, publicUrl: string | null): URL {
  const destination = request.headers.destination;
  if (typeof destination !== 'string') throw new HttpError('bad_request', 'a Destination header is required');
  let target: URL;
  try {
    target = new URL(destination, `${request.protocol}://${request.host}`);
  } catch {
    throw new HttpError('bad_request', 'the Destination header is not a URL');
  }
  if (!isThisServer(target, request, publicUrl)) {
    throw new HttpError('bad_gateway', 'the Destination is on another server; copy through the client');
  }
  return target;
}

/**
 * Nextcloud's identity headers of a resource: its ETag (also as OC-ETag) and OC-FileId, from the
 * row id its `oc:fileid` is made of.
 */
export function identityHeaders(reply: FastifyReply, etag: string, rowId: string): FastifyReply {
  return reply
    .header('ETag', etag)
    .header('OC-ETag', etag)
    .header('OC-FileId', ocId(numericFileId(rowId)));
}

/**
 * The mount a request came in by, as hrefs in its answers spell it: `/dav`, `/remote.php/webdav`
 * or `/remote.php/dav/files/<user>` (the authenticated user's name, whatever case the URL used).
 */
function mountOf(request: FastifyRequest): string {
  const mount = splitMount(request.url.split('?')[0]!);
  if (!mount) return '/dav';
  return mount.user === null
    ? mount.prefix
    : `/remote.php/dav/files/${encodeURIComponent(currentUser(request).username)}`;
}

function hrefOf(mount: string, path: string[], collection: boolean): string {
  const encoded = path.map((s) => encodeURIComponent(s)).join('/');
  return `${mount}/${encoded}${collection && path.length > 0 ? '/' : ''}`;
}

/**
 * `/remote.php/dav/files/<user>/` serves only the authenticated user's own tree: another name
 * answers 404, as Nextcloud does, which says nothing about whether that user exists.
 */
async function ownFilesMount(request: FastifyRequest): Promise<void> {
  const mount = splitMount(request.url.split('?')[0]!);
  if (mount?.user != null && mount.user !== currentUser(request).username)
    throw new HttpError('not_found', `no files of "${mount.user}" here: this mount serves your own`);
}

/**
 * A `DAV:lastmodified` value a client sets: seconds since 1970 (Nextcloud's form, rclone's) or an
 * HTTP date; undefined when it is neither, or not a time dfs keeps (services/mtime.ts).
 */
function mtimeOfProperty(value: string): number | undefined {
  const text = value.trim();
  try {
    if (/^\d+(\.\d+)?$/.test(text)) return mtimeFromSeconds(text, Date.now());
    const ms = Date.parse(text);
    return Number.isNaN(ms) ? undefined : mtimeFromSeconds(String(Math.floor(ms / 1000)), Date.now());
  } catch {
    return undefined;
  }
}

/** The entity tags of an If-Match or If-None-Match header (`*` kept as is; weakness ignored). */
function entityTags(header: string): string[] {
  return header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .filter(Boolean);
}

/**
 * If-Match and If-None-Match (RFC 9110 §13.1) on a write: `etag` is the target's, null when
 * nothing is there. A stale tag answers 412 before anything is written.
 */
export function assertPreconditions(request: FastifyRequest, etag: string | null): void {
  const ifMatch = request.headers['if-match'];
  if (typeof ifMatch === 'string') {
    const tags = entityTags(ifMatch);
    if (etag === null || !(tags.includes('*') || tags.includes(etag)))
      throw new HttpError(
        'precondition_failed',
        'If-Match does not hold: the resource changed or is not there',
      );
  }
  const ifNoneMatch = request.headers['if-none-match'];
  if (typeof ifNoneMatch === 'string' && etag !== null) {
    const tags = entityTags(ifNoneMatch);
    if (tags.includes('*') || tags.includes(etag))
      throw new HttpError('precondition_failed', 'If-None-Match does not hold: the resource is there');
  }
}

/** Owner's rights in Nextcloud's letters: share, read, delete, rename, move, and write or add. */
const FILE_PERMISSIONS = 'RGDNVW';
const FOLDER_PERMISSIONS = 'RGDNVCK';

/**
 * `oc:permissions` in Nextcloud's letters (apps/dav's Node::getDavPermissions): `S` shared with
 * me, `M` mounted, `G` read, `D` delete, `N`/`V` rename/move, `W` write a file, `C`/`K` add files
 * and folders to a folder; `R` (share again) is the owner's alone. A share's mount point can be
 * deleted (leaving the share) but not renamed or moved; a viewer only reads.
 */
export function davPermissions(resource: DavResource): string {
  const collection = resource.kind !== 'file';
  if (resource.kind === 'root' || !resource.share) return collection ? FOLDER_PERMISSIONS : FILE_PERMISSIONS;
  const mountPoint = isMountPoint(resource);
  if (resource.share.role === 'viewer') return mountPoint ? 'SMGD' : 'SMG';
  // An entry shared on its own, reached through a share viewed above it, is edited, not moved.
  const self = mountPoint ? 'D' : resource.share.changeItself === false ? '' : 'DNV';
  return `SMG${self}${collection ? 'CK' : 'W'}`;
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
 * What every WebDAV-speaking plugin needs. Bodies are left unread for their handler, whatever
 * their type: a PUT streams its own (a `.json` file comes as `application/json`, which fastify
 * would otherwise parse), and XML bodies (which some clients send without a Content-Type) are
 * read by xmlBody. Clients ask for credentials only when challenged.
 */
export function takeDavRequests(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  app.addHook('onSend', async (_request, reply, payload) => {
    if (reply.statusCode === 401) reply.header('WWW-Authenticate', 'Basic realm="dfs", charset="UTF-8"');
    return payload;
  });
}

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
  takeDavRequests(app);
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('DAV', '1, 2');
    return payload;
  });

  const bounds = dav.bounds;
  const key = propKey;
  const keyIn = (ns: string, name: string) => key({ ns, name });
  /** What a PROPFIND answer needs beyond a resource's row, read once per request. */
  interface PropContext {
    wanted: PropName[] | 'all' | 'names';
    /** The user's live locks. */
    locks: DavLockRow[];
    /** Dead properties by entry id. */
    dead: Map<string, DavPropertyRow[]>;
    /**
     * The usage of each tree answered (the user's, and the owners' of shares in it, by user id),
     * when quota properties are asked for.
     */
    usage: Map<string, Usage> | null;
    userId: string;
    /** The user's name (`oc:owner-id` of their own entries). */
    username: string;
    /** The mount the request came in by, for hrefs. */
    mount: string;
    /** What the root's ETag is made of (DavService.rootChangeSeq). */
    rootSeq: string;
    /** Recursive sizes of the folders answered (by id, '' for the root), when asked for. */
    sizes: Map<string, number>;
    /** Nextcloud's share types of the user's own entries answered, when asked for. */
    shareTypes: Map<string, number[]>;
  }
  /** One resource's answer; `sha1` is its content's, for files. */
  const props = (resource: DavResource, sha1: string | null, context: PropContext): DavResponse => {
    const { wanted, locks } = context;
    const row = resource.kind === 'root' ? null : resource.row;
    const collection = resource.kind !== 'file';
    const values = new Map<string, string>();
    const set = (name: string, xml: string) => values.set(keyIn(DAV_NS, name), xml);
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
        .map((l) =>
          activeLock({ ...l, href: hrefOf(context.mount, l.path === '' ? [] : l.path.split('/'), false) }),
        )
        .join(''),
    );
    const etag = entityTag(resource, sha1, context.rootSeq);
    if (resource.kind !== 'file' || sha1) set('getetag', escapeXml(etag));
    if (resource.kind === 'file' && row) {
      set('getcontentlength', String(row.size));
      set('getcontenttype', escapeXml(row.mime ?? 'application/octet-stream'));
    }
    const names = resource.kind === 'root' ? [...LIVE, ...QUOTA] : [...LIVE];
    const folderBytes = collection ? context.sizes.get(row?.id ?? '') : undefined;
    const usage = context.usage?.get(row ? row.user_id : context.userId);
    if (collection && usage) {
      // A folder's used bytes are what it holds; the bytes available are its owner's: in a share,
      // what the owner's quota leaves is what an editor may add.
      const used = resource.kind === 'root' ? usage.usedBytes : folderBytes;
      if (used !== undefined) set('quota-used-bytes', String(used));
      if (usage.quotaBytes !== null)
        set('quota-available-bytes', String(Math.max(0, usage.quotaBytes - usage.usedBytes)));
    }
    // ownCloud's and Nextcloud's properties (sync clients): given when asked for, never in allprop.
    const oc = (name: string, xml: string) => values.set(keyIn(OC_NS, name), xml);
    const fileId = row ? ocFileIdOf(row) : numericFileId(rootIdOf(context.userId));
    oc('fileid', fileId);
    oc('id', ocId(fileId));
    oc('permissions', davPermissions(resource));
    // Who owns it: the user, or whoever shared it with them (Nextcloud's clients show the name).
    const owner = resource.kind !== 'root' && resource.share ? resource.share.mount.owner : context.username;
    oc('owner-id', escapeXml(owner));
    oc('owner-display-name', escapeXml(owner));
    // What the user shares of their own (a recipient's entries are someone else's to share).
    oc(
      'share-types',
      (context.shareTypes.get(row?.id ?? '') ?? [])
        .map((t) => `<oc:share-type>${t}</oc:share-type>`)
        .join(''),
    );
    values.set(
      keyIn(NC_NS, 'is-mount-root'),
      resource.kind !== 'root' && isMountPoint(resource) ? 'true' : 'false',
    );
    if (resource.kind !== 'root' && resource.share) values.set(keyIn(NC_NS, 'mount-type'), 'shared');
    if (resource.kind === 'file' && row) {
      oc('size', String(row.size));
      if (sha1) oc('checksums', `<oc:checksum>SHA1:${sha1}</oc:checksum>`);
    } else if (folderBytes !== undefined) oc('size', String(folderBytes));
    // Constant on the root: a change would tell clients the server was restored from a backup.
    if (resource.kind === 'root') oc('data-fingerprint', '');
    values.set(
      keyIn(NC_NS, 'has-preview'),
      resource.kind === 'file' && row && canThumbnail(row.mime) ? 'true' : 'false',
    );
    // Dead properties, as clients set them (PROPPATCH).
    for (const dead of (row && context.dead.get(row.id)) || []) {
      const prop = { ns: dead.ns, name: dead.name };
      values.set(key(prop), dead.value);
      names.push(prop);
    }
    return answerOf(hrefOf(context.mount, resource.path, collection), values, wanted, names);
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
    // Properties are written into the entry's owner's tree: a viewer of a share writes none.
    await dav.assertWritable(user.id, resource.path);
    const owner = resource.kind === 'root' ? user.id : resource.row.user_id;
    // DAV:lastmodified may be set, as on Nextcloud (rclone sets a file's time so): the mtime.
    const isMtime = (p: PropName) => p.ns === DAV_NS && p.name === 'lastmodified';
    const mtimes = updates.filter((u) => isMtime(u.prop));
    // A folder's modification time is its own writes' (docs/API.md): only a file's is set.
    const protectedProp = (p: PropName) =>
      (p.ns === DAV_NS && !(isMtime(p) && resource.kind === 'file')) || resource.kind === 'root';
    const mtime = (u: PropUpdate) => (u.op === 'set' ? mtimeOfProperty(u.value) : undefined);
    let results = updates.map((u) => ({ prop: u.prop, status: '200 OK' }));
    if (updates.some((u) => protectedProp(u.prop))) {
      results = updates.map((u) => ({
        prop: u.prop,
        status: protectedProp(u.prop) ? '403 Forbidden' : '424 Failed Dependency',
      }));
    } else if (mtimes.some((u) => mtime(u) === undefined)) {
      results = updates.map((u) => ({
        prop: u.prop,
        status: isMtime(u.prop) && mtime(u) === undefined ? '409 Conflict' : '424 Failed Dependency',
      }));
    } else if (resource.kind !== 'root') {
      // Past a bound (services/dav-limits.ts), nothing is stored: 507 for what would not fit.
      const dead = updates.filter((u) => !isMtime(u.prop));
      const overBound = await dav.patchProperties(owner, resource.row.id, dead);
      if (overBound.some(Boolean))
        results = updates.map((u) => ({
          prop: u.prop,
          status: overBound[dead.indexOf(u)] ? '507 Insufficient Storage' : '424 Failed Dependency',
        }));
      else for (const u of mtimes) await dav.setMtime(owner, resource.row.id, mtime(u)!);
    }
    return reply
      .status(207)
      .type('application/xml; charset=utf-8')
      .send(proppatchStatus(hrefOf(mountOf(request), resource.path, resource.kind !== 'file'), results));
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
    // The root's members and its ETag both need the shares mounted there: read once.
    const mounted = resource.kind === 'root' ? await dav.mounted(user.id) : undefined;
    const self: DavMember = {
      resource,
      sha1: resource.kind === 'file' ? await dav.sha1Of(resource.row) : null,
    };
    const asks = (test: (p: PropName) => boolean) =>
      wanted === 'all' || (Array.isArray(wanted) && wanted.some(test));
    // Recursive sizes cost a walk of the subtrees: only when a client names them.
    const asksSize =
      Array.isArray(wanted) &&
      wanted.some(
        (p) => (p.ns === OC_NS && p.name === 'size') || (p.ns === DAV_NS && p.name === 'quota-used-bytes'),
      );
    const asksShareTypes =
      Array.isArray(wanted) && wanted.some((p) => p.ns === OC_NS && p.name === 'share-types');
    const asksDead = wanted === 'names' || asks((p) => p.ns !== DAV_NS);
    // Whose trees are answered: the folder's owner (its members are theirs too), or at the root
    // the user and the owners of the shares mounted there.
    const owners =
      resource.kind === 'root'
        ? [user.id, ...[...(mounted?.rows.values() ?? [])].map((row) => row.user_id)]
        : [resource.row.user_id];
    const base: Omit<PropContext, 'sizes' | 'shareTypes' | 'dead'> = {
      wanted,
      userId: user.id,
      username: user.username,
      mount: mountOf(request),
      rootSeq: resource.kind === 'root' ? await dav.rootChangeSeq(user.id, mounted) : '',
      locks: await davLocks.live(user.id),
      usage:
        resource.kind !== 'file' && asks((p) => p.ns === DAV_NS && p.name.startsWith('quota'))
          ? new Map(
              await Promise.all([...new Set(owners)].map(async (id) => [id, await dav.usage(id)] as const)),
            )
          : null,
    };
    /** What a page of the answer needs beyond its rows, read for that page alone. */
    const contextOf = async (page: DavMember[]): Promise<PropContext> => {
      const resources = page.map((r) => r.resource);
      const ids = resources.flatMap((r) => (r.kind === 'root' ? [] : [r.row.id]));
      return {
        ...base,
        sizes: asksSize ? await dav.recursiveSizes(user.id, resources) : new Map(),
        shareTypes: asksShareTypes
          ? await dav.shareTypes(
              user.id,
              resources.flatMap((r) => (r.kind === 'root' || r.share ? [] : [r.row.id])),
            )
          : new Map(),
        dead: asksDead ? await dav.deadPropertiesOf(ids) : new Map(),
      };
    };
    // The resource, then its members a page at a time: rows are read as the answer is written.
    async function* pages(): AsyncGenerator<DavMember[]> {
      yield [self];
      if (depth === '1' && resource.kind !== 'file') yield* dav.memberPages(user.id, resource, mounted);
    }
    // A page's responses in one piece: thousands of small writes cost more than the XML.
    async function* responses(): AsyncGenerator<Buffer> {
      for await (const page of pages()) {
        const context = await contextOf(page);
        yield Buffer.from(page.map((r) => responseXml(props(r.resource, r.sha1, context))).join(''));
      }
    }
    identify(reply, resource, self.sha1, base.rootSeq);
    // The answer is measured before its first byte is sent, so a status can still say it is too
    // large (507). An answer up to KEEP_ANSWER_BYTES is sent as measured, with its length; a
    // larger one is read and written again a page at a time, never whole in memory (its length
    // then unsaid: what changed between the two readings changes it). Either way the event loop
    // gets a turn every TURN_BYTES.
    let length = Buffer.byteLength(MULTISTATUS_HEAD) + Buffer.byteLength(MULTISTATUS_TAIL);
    let kept: Buffer[] | null = [];
    let sinceTurn = 0;
    for await (const xml of responses()) {
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
        for await (const xml of responses()) {
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
    reply.status(207).type('application/xml; charset=utf-8');
    if (measured) reply.header('content-length', length);
    return reply.send(Readable.from(body(), { objectMode: false }));
  };

  /** Nextcloud's identity headers of a resource: its ETag (also as OC-ETag) and OC-FileId. */
  const identify = (
    reply: FastifyReply,
    resource: DavResource,
    sha1: string | null,
    rootSeq: number | string,
  ) => {
    const row = resource.kind === 'root' ? null : resource.row;
    identityHeaders(
      reply,
      entityTag(resource, sha1, rootSeq),
      row ? row.id : rootIdOf(currentUser(reply.request).id),
    );
  };
  /** After a write: the identity headers of what is now at `path`. */
  const identifyAt = async (reply: FastifyReply, userId: string, path: string[]) => {
    const found = await dav.resolve(userId, path);
    if (!found) return;
    const sha1 = found.kind === 'file' ? await dav.sha1Of(found.row) : null;
    identify(reply, found, sha1, found.kind === 'root' ? await dav.rootChangeSeq(userId) : 0);
  };
  /** If-Match / If-None-Match against what is at `path` now (412 when stale). */
  const preconditions = async (request: FastifyRequest, path: string[]) => {
    if (request.headers['if-match'] === undefined && request.headers['if-none-match'] === undefined) return;
    const userId = currentUser(request).id;
    const found = await dav.resolve(userId, path);
    assertPreconditions(request, found ? await dav.etag(userId, found) : null);
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
    // A shared file's bytes are read as its owner's.
    const download = await files.downloadable(resource.row.user_id, resource.row.id);
    // Bytes are served only when they match this SHA-1, so the checksum is never wrong.
    reply.header('OC-Checksum', `SHA1:${download.content.sha1}`);
    identify(reply, resource, download.content.sha1, 0);
    return downloads.send(request, reply, download);
  };

  const options = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.status(200).header('Allow', ALLOW).header('MS-Author-Via', 'DAV').send();

  const notYet = async (request: FastifyRequest, reply: FastifyReply) =>
    reply
      .status(405)
      .header('Allow', ALLOW)
      .send({
        error: { code: 'method_not_allowed', message: `${request.method} is not served on WebDAV` },
      });

  /** The resource's ETag as GET and PROPFIND answer it, for `If` header entity tags. */
  const etagOf = async (userId: string, path: string[]) => {
    const found = await dav.resolve(userId, path);
    return found ? dav.etag(userId, found) : null;
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
      // A lock is a write: a viewer of a share takes none.
      await dav.assertWritable(user.id, path);
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
    const href = hrefOf(mountOf(request), path, false);
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
    await preconditions(request, davPath(request.url));
    const length = Number(request.headers['content-length']);
    // Nextcloud's and ownCloud's clients (and rclone) send the source's time, in seconds.
    const mtimeHeader = request.headers['x-oc-mtime'];
    const mtime = typeof mtimeHeader === 'string' ? mtimeFromSeconds(mtimeHeader, Date.now()) : undefined;
    const created = await dav.put(
      currentUser(request).id,
      davPath(request.url),
      request.body as Readable,
      Number.isSafeInteger(length) ? length : null,
      mtime,
    );
    if (mtime !== undefined) reply.header('X-OC-MTime', 'accepted');
    await identifyAt(reply, currentUser(request).id, davPath(request.url));
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
    await identifyAt(reply, currentUser(request).id, davPath(request.url));
    return reply.status(201).send();
  };

  const remove = async (request: FastifyRequest, reply: FastifyReply) => {
    const path = davPath(request.url);
    await writable(request, [{ path, deep: true }]);
    await preconditions(request, path);
    await dav.delete(currentUser(request).id, path);
    await davLocks.follow(currentUser(request).id, path, null);
    return reply.status(204).send();
  };

  const transfer = (op: 'move' | 'copy') => async (request: FastifyRequest, reply: FastifyReply) => {
    const target = destinationOf(request, app.config.publicUrl);
    // Any mount of the user's own tree is the same tree.
    const targetMount = splitMount(target.pathname);
    if (!targetMount || (targetMount.user !== null && targetMount.user !== currentUser(request).username)) {
      throw new HttpError('forbidden', 'the Destination is outside your WebDAV tree');
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
    await preconditions(request, from);
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
    await identifyAt(reply, currentUser(request).id, to);
    return reply.status(created ? 201 : 204).send();
  };

  // WebDAV is its own protocol (RFC 4918), not part of the JSON API's OpenAPI document.
  const schema = { hide: true };
  // dfs's own mount and Nextcloud's two: one tree, one set of rules.
  const mounts = ['/dav', '/remote.php/webdav', '/remote.php/dav/files/:user'];
  for (const url of mounts.flatMap((m) => [m, `${m}/`, `${m}/*`])) {
    // The files mount names a user: every route there checks that it is the one signed in.
    const common = { url, schema, ...(url.includes(':user') ? { preHandler: ownFilesMount } : {}) };
    const config = { access: 'user' as const };
    app.route({ method: 'OPTIONS', url, schema, config: { access: 'public' }, handler: options });
    app.route({ ...common, method: 'PROPFIND', config, handler: propfind });
    app.route({ ...common, method: 'PROPPATCH', config, handler: proppatch });
    app.route({ ...common, method: ['GET', 'HEAD'], config, handler: read, exposeHeadRoute: false });
    // A file's bytes, whatever type the client gives them: streamed, not a small body.
    app.route({ ...common, method: 'PUT', config: { ...config, streamedBody: true }, handler: put });
    app.route({ ...common, method: 'MKCOL', config, handler: mkcol });
    app.route({ ...common, method: 'DELETE', config, handler: remove });
    app.route({ ...common, method: 'COPY', config, handler: transfer('copy') });
    app.route({ ...common, method: 'MOVE', config, handler: transfer('move') });
    app.route({ ...common, method: 'LOCK', config, handler: lock });
    app.route({ ...common, method: 'UNLOCK', config, handler: unlock });
    app.route({ ...common, method: ['POST', 'PATCH'], config, handler: notYet });
  }
}
