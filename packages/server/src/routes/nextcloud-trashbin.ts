import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';
import {
  answerOf,
  DAV_NS,
  type DavResponse,
  escapeXml,
  MULTISTATUS_HEAD,
  MULTISTATUS_TAIL,
  NC_NS,
  OC_NS,
  type PropName,
  parsePropfind,
  propKey,
  responseXml,
} from '../http/dav-xml.ts';
import { currentUser } from '../plugins/auth.ts';
import type { FileRowWithSha1 } from '../repositories/files.ts';
import { NextcloudTrashbin, type TrashEntry } from '../services/protocols/nextcloud-trashbin.ts';
import { entityTag, numericFileId, ocId } from '../services/webdav.ts';
import { davPath, destinationOf, identityHeaders, takeDavRequests, xmlBody } from './webdav.ts';

const BASE = '/remote.php/dav/trashbin';
/** Segments of a URL before the user's part of the trashbin: `remote.php`, `dav`, `trashbin`, user. */
const PREFIX_SEGMENTS = 4;
const ALLOW = 'OPTIONS, PROPFIND, MOVE, DELETE';

/** What a trashbin URL names, below `/remote.php/dav/trashbin/<user>/`. */
type Place = { kind: 'home' } | { kind: 'restore' } | { kind: 'trash' } | { kind: 'entry'; path: string[] };

const davProp = (name: string): PropName => ({ ns: DAV_NS, name });
const ocProp = (name: string): PropName => ({ ns: OC_NS, name });
const ncProp = (name: string): PropName => ({ ns: NC_NS, name });
const key = propKey;
/** What `allprop` and `propname` answer: the DAV properties and the trashbin's own. */
const ALL: PropName[] = [
  ...['displayname', 'resourcetype', 'getcontentlength', 'getcontenttype', 'getlastmodified', 'getetag'].map(
    davProp,
  ),
  ...['trashbin-filename', 'trashbin-original-location', 'trashbin-deletion-time'].map(ncProp),
];

/** The user's part of a trashbin URL path, decoded; 404 for what the trashbin does not have. */
function placeOf(pathname: string): Place {
  const [top, ...rest] = davPath(pathname).slice(PREFIX_SEGMENTS);
  if (top === undefined) return { kind: 'home' };
  if (top === 'trash') return rest.length === 0 ? { kind: 'trash' } : { kind: 'entry', path: rest };
  if (top === 'restore' && rest.length === 0) return { kind: 'restore' };
  throw new HttpError('not_found', `the trashbin has no "${[top, ...rest].join('/')}"`);
}

/**
 * `/remote.php/dav/trashbin/<user>/` serves the authenticated user's own trash only: another name
 * answers 404, as the files mount does.
 */
async function ownTrashbin(request: FastifyRequest): Promise<void> {
  const user = davPath(request.url)[PREFIX_SEGMENTS - 1];
  if (user !== currentUser(request).username)
    throw new HttpError('not_found', `no trash of "${user}" here: this trashbin is your own`);
}

/**
 * Nextcloud's trashbin over DAV, on dfs's trash: PROPFIND lists what the user trashed (and what
 * is inside a trashed folder), MOVE to `restore/` puts an item back, DELETE purges one item or,
 * on `trash/` itself, all of them. The mobile apps' trash screens use it. Registered after the
 * WebDAV routes, which add the methods to the server.
 */
export async function nextcloudTrashbinRoutes(app: AppInstance): Promise<void> {
  const trashbin = new NextcloudTrashbin(app.services.repos, app.services.files);
  const { dav } = app.services;
  const bounds = dav.bounds;

  const hrefOf = (request: FastifyRequest, place: Place, collection: boolean) => {
    const user = `${BASE}/${encodeURIComponent(currentUser(request).username)}/`;
    if (place.kind === 'home') return user;
    if (place.kind !== 'entry') return `${user}${place.kind}/`;
    const path = place.path.map((s) => encodeURIComponent(s)).join('/');
    return `${user}trash/${path}${collection ? '/' : ''}`;
  };

  /** One answer of a PROPFIND: `values` by property, given as asked. */
  const answer = (href: string, values: Map<string, string>, wanted: PropName[] | 'all' | 'names') =>
    answerOf(href, values, wanted, ALL);

  /** The properties of a collection of the trashbin itself (home, `trash/`, `restore/`). */
  const collectionValues = (name: string, etag: string | null) => {
    const values = new Map<string, string>([
      [key(davProp('displayname')), name],
      [key(davProp('resourcetype')), '<D:collection/>'],
    ]);
    if (etag) values.set(key(davProp('getetag')), escapeXml(etag));
    return values;
  };

  /** The properties of a trashed entry: `below` are the names from its item down to it. */
  const entryValues = (entry: TrashEntry, row: FileRowWithSha1, below: string[]) => {
    const values = new Map<string, string>();
    const set = (name: string, xml: string) => values.set(key(davProp(name)), xml);
    const file = row.kind === 'file';
    set('displayname', escapeXml(row.name));
    set('resourcetype', file ? '' : '<D:collection/>');
    set('getlastmodified', new Date(Number(row.mtime ?? row.updated_at)).toUTCString());
    if (file) {
      set('getcontentlength', String(row.size));
      set('getcontenttype', escapeXml(row.mime ?? 'application/octet-stream'));
    }
    if (!file || row.sha1)
      set('getetag', escapeXml(entityTag({ kind: row.kind, path: [], row }, row.sha1, 0)));
    const fileId = numericFileId(row.id);
    values.set(key(ocProp('fileid')), fileId);
    values.set(key(ocProp('id')), ocId(fileId));
    values.set(key(ocProp('size')), String(file ? row.size : Number(row.tree_bytes ?? 0)));
    const item = entry.item;
    values.set(key(ncProp('trashbin-filename')), escapeXml(row.name));
    values.set(
      key(ncProp('trashbin-original-location')),
      escapeXml([item.originalLocation, ...below].join('/')),
    );
    values.set(key(ncProp('trashbin-deletion-time')), String(item.deletedAt));
    // The trash serves no thumbnails: a client that thought so would ask for them in vain.
    values.set(key(ncProp('has-preview')), 'false');
    return values;
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
    const place = placeOf(request.url.split('?')[0]!);
    const body = await xmlBody(request, bounds.xmlBodyBytes);
    const ask = parsePropfind(body, bounds.propfindProps);
    const wanted = ask.kind === 'allprop' ? 'all' : ask.kind === 'propname' ? 'names' : ask.props;
    const responses: DavResponse[] = [];
    const collection = (at: Place, name: string, etag: string | null = null) =>
      responses.push(answer(hrefOf(request, at, true), collectionValues(name, etag), wanted));
    // The tree's own change counter: shares mounted in it have nothing in this trash.
    const trashTag = async () => `"t${await app.services.repos.files.rootChangeSeq(user.id)}"`;
    if (place.kind === 'home') {
      collection(place, escapeXml(user.username));
      if (depth === '1') {
        collection({ kind: 'trash' }, 'trash', await trashTag());
        collection({ kind: 'restore' }, 'restore');
      }
    } else if (place.kind === 'restore') {
      collection(place, 'restore');
    } else if (place.kind === 'trash') {
      collection(place, 'trash', await trashTag());
      if (depth === '1') {
        for (const item of await trashbin.items(user.id)) {
          const at: Place = { kind: 'entry', path: [item.segment] };
          const entry = { item, row: item.row, below: [] };
          responses.push(
            answer(hrefOf(request, at, item.row.kind === 'folder'), entryValues(entry, item.row, []), wanted),
          );
        }
      }
    } else {
      const entry = await trashbin.resolve(user.id, place.path);
      const folder = entry.row.kind === 'folder';
      responses.push(
        answer(hrefOf(request, place, folder), entryValues(entry, entry.row, entry.below), wanted),
      );
      if (depth === '1' && folder) {
        for (const child of await trashbin.children(user.id, entry)) {
          const at: Place = { kind: 'entry', path: [...place.path, child.name] };
          const values = entryValues(entry, child, [...entry.below, child.name]);
          responses.push(answer(hrefOf(request, at, child.kind === 'folder'), values, wanted));
        }
      }
    }
    const parts = [MULTISTATUS_HEAD, ...responses.map(responseXml), MULTISTATUS_TAIL];
    const length = parts.reduce((sum, part) => sum + Buffer.byteLength(part), 0);
    if (length > bounds.answerBytes)
      throw new HttpError(
        'insufficient_storage',
        `the answer would be more than ${bounds.answerBytes} bytes: list with Depth: 0, or empty the trash`,
      );
    return reply.status(207).type('application/xml; charset=utf-8').send(parts.join(''));
  };

  /** MOVE `trash/<item>` to `restore/<any name>`: the item goes back where it was (dfs's rules). */
  const restore = async (request: FastifyRequest, reply: FastifyReply) => {
    const user = currentUser(request);
    const place = placeOf(request.url.split('?')[0]!);
    const target = destinationOf(request, app.config.publicUrl);
    // The name under restore/ is the client's choice (the Android app sends the original name):
    // an item always goes back to its own place, as in Nextcloud.
    const to = target.pathname.startsWith(`${BASE}/`) ? davPath(target.pathname) : [];
    const ownRestore =
      to.length === PREFIX_SEGMENTS + 2 &&
      to[PREFIX_SEGMENTS - 1] === user.username &&
      to[PREFIX_SEGMENTS] === 'restore';
    if (!ownRestore)
      throw new HttpError(
        'forbidden',
        `a trash item is restored by a MOVE to ${BASE}/${user.username}/restore/<name>`,
      );
    if (place.kind !== 'entry') throw new HttpError('forbidden', 'only an item in trash/ can be restored');
    const row = await trashbin.restore(user.id, place.path);
    return identityHeaders(reply, entityTag({ kind: row.kind, path: [], row }, row.sha1, 0), row.id)
      .status(201)
      .send();
  };

  /** DELETE `trash/<item>` purges it; DELETE `trash/` empties the trash. */
  const purge = async (request: FastifyRequest, reply: FastifyReply) => {
    const user = currentUser(request);
    const place = placeOf(request.url.split('?')[0]!);
    if (place.kind === 'trash') await trashbin.emptyTrash(user.id);
    else if (place.kind === 'entry') await trashbin.purge(user.id, place.path);
    else throw new HttpError('forbidden', 'only trash/ and the items in it can be deleted');
    return reply.status(204).send();
  };

  const options = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.status(200).header('Allow', ALLOW).send();

  const notServed = async (request: FastifyRequest, reply: FastifyReply) =>
    reply
      .status(405)
      .header('Allow', ALLOW)
      .send({
        error: { code: 'method_not_allowed', message: `${request.method} is not served on the trashbin` },
      });

  await app.register(async (scope) => {
    takeDavRequests(scope);
    const schema = { hide: true };
    const config = { access: 'user' as const };
    for (const url of [`${BASE}/:user`, `${BASE}/:user/`, `${BASE}/:user/*`]) {
      const common = { url, schema, config, preHandler: ownTrashbin };
      scope.route({ method: 'OPTIONS', url, schema, config: { access: 'public' }, handler: options });
      scope.route({ ...common, method: 'PROPFIND', handler: propfind });
      scope.route({ ...common, method: 'MOVE', handler: restore });
      scope.route({ ...common, method: 'DELETE', handler: purge });
      scope.route({
        ...common,
        method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'MKCOL', 'COPY', 'PROPPATCH', 'LOCK', 'UNLOCK'],
        handler: notServed,
        exposeHeadRoute: false,
      });
    }
  });
}
