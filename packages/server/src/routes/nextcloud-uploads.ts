import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';
import {
  DAV_NS,
  type DavResponse,
  MULTISTATUS_HEAD,
  MULTISTATUS_TAIL,
  type PropName,
  parsePropfind,
  responseXml,
} from '../http/dav-xml.ts';
import { currentUser } from '../plugins/auth.ts';
import { mtimeFromSeconds } from '../services/mtime.ts';
import { fileEntityTag, splitMount } from '../services/webdav.ts';
import {
  assertPreconditions,
  davPath,
  destinationOf,
  identityHeaders,
  takeDavRequests,
  xmlBody,
} from './webdav.ts';

const UPLOADS = '/remote.php/dav/uploads';
/** The XML of a PROPFIND body is small; anything larger is not a client of this protocol. */
const XML_BODY_BYTES = 64 * 1024;

type Params = { user: string; transfer: string; chunk?: string };

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function byteCount(request: FastifyRequest, name: string): number | undefined {
  const text = header(request, name);
  if (text === undefined) return undefined;
  if (!/^\d{1,16}$/.test(text.trim()))
    throw new HttpError('bad_request', `${name} must be a number of bytes`);
  return Number(text);
}

/** The user's own uploads only: another name answers 404, as on the files mount. */
function ownUser(request: FastifyRequest): string {
  const { user } = request.params as Params;
  const me = currentUser(request);
  if (user !== me.username)
    throw new HttpError('not_found', `no uploads of "${user}" here: this folder holds your own`);
  return me.id;
}

/** `OC-Checksum: SHA1:<hex>` (other types, which dfs does not advertise, are not checked). */
function sha1Of(request: FastifyRequest): string | undefined {
  const text = header(request, 'oc-checksum');
  if (text === undefined) return undefined;
  for (const part of text.trim().split(/\s+/)) {
    const [type, value] = part.split(':');
    if (type?.toUpperCase() !== 'SHA1') continue;
    if (!/^[0-9a-fA-F]{40}$/.test(value ?? ''))
      throw new HttpError('bad_request', 'OC-Checksum: SHA1 needs 40 hex digits');
    return value!.toLowerCase();
  }
  return undefined;
}

/**
 * Nextcloud's chunked upload v2 at /remote.php/dav/uploads/<user>/<transfer id>/: MKCOL opens an
 * upload, PUT sends its chunks, PROPFIND lists them (to resume), MOVE of `.file` to the target
 * finishes it, DELETE drops it. The rules are in services/protocols/nextcloud-uploads.ts.
 */
export async function nextcloudUploadRoutes(app: AppInstance): Promise<void> {
  const { ncUploads, dav, davLocks } = app.services;
  // Chunk bodies are streamed to their handler whatever their type (rclone says form-urlencoded).
  takeDavRequests(app);

  const mkcol = async (request: FastifyRequest, reply: FastifyReply) => {
    const userId = ownUser(request);
    const { transfer } = request.params as Params;
    await ncUploads.open(
      userId,
      transfer,
      byteCount(request, 'oc-total-length'),
      header(request, 'destination'),
    );
    return reply.status(201).send();
  };

  const propfind = async (request: FastifyRequest, reply: FastifyReply) => {
    const userId = ownUser(request);
    const { transfer } = request.params as Params;
    const depth = header(request, 'depth') ?? '1';
    const ask = parsePropfind(await xmlBody(request, XML_BODY_BYTES), 64);
    const chunks = await ncUploads.chunks(userId, transfer);
    const asked = (p: PropName) =>
      ask.kind !== 'prop' || ask.props.some((q) => q.ns === p.ns && q.name === p.name);
    const resourcetype: PropName = { ns: DAV_NS, name: 'resourcetype' };
    const contentLength: PropName = { ns: DAV_NS, name: 'getcontentlength' };
    const others =
      ask.kind === 'prop'
        ? ask.props.filter(
            (p) => !(p.ns === DAV_NS && (p.name === resourcetype.name || p.name === contentLength.name)),
          )
        : [];
    const folder = `${UPLOADS}/${encodeURIComponent(currentUser(request).username)}/${encodeURIComponent(transfer)}/`;
    const responses: DavResponse[] = [
      {
        href: folder,
        found: asked(resourcetype) ? [{ prop: resourcetype, xml: '<D:collection/>' }] : [],
        missing: [...(ask.kind === 'prop' && asked(contentLength) ? [contentLength] : []), ...others],
      },
    ];
    if (depth !== '0') {
      for (const chunk of chunks) {
        const found: DavResponse['found'] = [];
        if (asked(resourcetype)) found.push({ prop: resourcetype, xml: '' });
        if (asked(contentLength)) found.push({ prop: contentLength, xml: String(chunk.size) });
        responses.push({ href: `${folder}${encodeURIComponent(chunk.name)}`, found, missing: others });
      }
    }
    // The exact type Nextcloud's clients insist on; with another they start the upload over.
    return reply
      .status(207)
      .type('application/xml; charset=utf-8')
      .send(MULTISTATUS_HEAD + responses.map(responseXml).join('') + MULTISTATUS_TAIL);
  };

  const putChunk = async (request: FastifyRequest, reply: FastifyReply) => {
    const userId = ownUser(request);
    const { transfer, chunk } = request.params as Params;
    const length = byteCount(request, 'content-length');
    const offset = byteCount(request, 'oc-chunk-offset');
    const totalLength = byteCount(request, 'oc-total-length');
    await ncUploads.putChunk(userId, transfer, chunk!, request.body as Readable, {
      ...(offset === undefined ? {} : { offset }),
      ...(totalLength === undefined ? {} : { totalLength }),
      ...(length === undefined ? {} : { length }),
    });
    return reply.status(201).send();
  };

  /** The target of the final MOVE: a path (3.x clients) or a URL (current ones, rclone) of the files mount. */
  const targetOf = (request: FastifyRequest): string[] => {
    const target = destinationOf(request, app.config.publicUrl);
    const mount = splitMount(target.pathname);
    if (!mount || (mount.user !== null && mount.user !== currentUser(request).username))
      throw new HttpError('forbidden', 'the Destination is outside your files');
    return davPath(target.pathname);
  };

  const move = async (request: FastifyRequest, reply: FastifyReply) => {
    const userId = ownUser(request);
    const { transfer, chunk } = request.params as Params;
    if (chunk !== '.file')
      throw new HttpError('method_not_allowed', 'only the upload\'s ".file" is moved, to finish it');
    const path = targetOf(request);
    if (path.length === 0) throw new HttpError('forbidden', 'the root cannot be replaced');
    const etagAt = async (p: string[]) => {
      const found = await dav.resolve(userId, p);
      return found ? dav.etag(userId, found) : null;
    };
    // Current clients say the ETag they replace as `If: <target> (["etag"])`; others as If-Match.
    const ifHeader = header(request, 'if');
    await davLocks.assertWritable(userId, path, [{ path, deep: false }], ifHeader, etagAt);
    if (header(request, 'if-match') !== undefined || header(request, 'if-none-match') !== undefined)
      assertPreconditions(request, await etagAt(path));
    const mtimeHeader = header(request, 'x-oc-mtime');
    const mtime = mtimeHeader === undefined ? undefined : mtimeFromSeconds(mtimeHeader, Date.now());
    const totalLength = byteCount(request, 'oc-total-length');
    const sha1 = sha1Of(request);
    const { file, created } = await ncUploads.assemble(userId, transfer, {
      path,
      ...(totalLength === undefined ? {} : { totalLength }),
      ...(sha1 === undefined ? {} : { sha1 }),
      ...(mtime === undefined ? {} : { mtime }),
    });
    if (mtime !== undefined) reply.header('X-OC-MTime', 'accepted');
    return identityHeaders(reply, fileEntityTag(file.sha1), file.id)
      .status(created ? 201 : 204)
      .send();
  };

  const remove = async (request: FastifyRequest, reply: FastifyReply) => {
    const userId = ownUser(request);
    const { transfer, chunk } = request.params as Params;
    if (chunk === undefined) await ncUploads.cancel(userId, transfer);
    else await ncUploads.deleteChunk(userId, transfer, chunk);
    return reply.status(204).send();
  };

  const schema = { hide: true };
  const config = { access: 'user' as const };
  for (const url of [`${UPLOADS}/:user/:transfer`, `${UPLOADS}/:user/:transfer/`]) {
    app.route({ url, method: 'MKCOL', schema, config, handler: mkcol });
    app.route({ url, method: 'PROPFIND', schema, config, handler: propfind });
    app.route({ url, method: 'DELETE', schema, config, handler: remove });
  }
  const chunkUrl = `${UPLOADS}/:user/:transfer/:chunk`;
  app.route({
    url: chunkUrl,
    method: 'PUT',
    schema,
    config: { ...config, streamedBody: true },
    handler: putChunk,
  });
  app.route({ url: chunkUrl, method: 'MOVE', schema, config, handler: move });
  app.route({ url: chunkUrl, method: 'DELETE', schema, config, handler: remove });
}
