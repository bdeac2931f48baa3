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
  type PropName,
  parsePropfind,
  propKey,
  responseXml,
} from '../http/dav-xml.ts';
import { currentUser } from '../plugins/auth.ts';
import { CURRENT } from '../services/history/versions.ts';
import { fileEntityTag } from '../services/webdav.ts';
import { davPath, destinationOf, identityHeaders, takeDavRequests, xmlBody } from './webdav.ts';

const BASE = '/remote.php/dav/versions';
/** Segments before the user's part: `remote.php`, `dav`, `versions`, user. */
const PREFIX_SEGMENTS = 4;
/** A PROPFIND body of the apps is a few properties. */
const XML_BODY_BYTES = 64 * 1024;

const davProp = (name: string): PropName => ({ ns: DAV_NS, name });
const ncProp = (name: string): PropName => ({ ns: NC_NS, name });
const LISTED: PropName[] = [
  ...['displayname', 'resourcetype', 'getcontentlength', 'getcontenttype', 'getlastmodified', 'getetag'].map(
    davProp,
  ),
  ...['version-author', 'version-label'].map(ncProp),
];

/**
 * Nextcloud's versions over DAV (`/remote.php/dav/versions/<user>/versions/<fileid>/`), on dfs's
 * file versions: the apps' "Versions" view lists a file's older contents, downloads one, restores
 * one (MOVE to `…/restore/target`; the replaced content becomes a version) or deletes one.
 * `<fileid>` is the file's `oc:fileid`.
 */
export async function nextcloudVersionRoutes(app: AppInstance): Promise<void> {
  const { versions, downloads, repos, access } = app.services;
  takeDavRequests(app);

  /**
   * The file named by its `oc:fileid`, and the version below it: one of the user's own files, or
   * a file shared with them (its `oc:fileid` is its owner's, as PROPFIND shows it), whose
   * versions a viewer lists and downloads, an editor also restores, and only the owner deletes.
   * `ownerId` is whose tree the file is in; `need` is what the request does.
   */
  const target = async (request: FastifyRequest, need: 'read' | 'write' | 'owner' = 'read') => {
    const user = currentUser(request);
    const [owner, top, fileId, versionId, ...rest] = davPath(request.url).slice(PREFIX_SEGMENTS - 1);
    if (owner !== user.username)
      throw new HttpError('not_found', `no versions of "${owner}" here: these are your own`);
    if (top !== 'versions' || fileId === undefined || rest.length > 0)
      throw new HttpError('not_found', 'versions are at versions/<fileid>/<version>');
    let file = await repos.files.findByOcFileId(user.id, fileId);
    let ownerId = user.id;
    if (!file) {
      // Someone else's file reaches the user only through a share mounted in their tree.
      const owners = new Set((await access.mounts(user.id)).map((m) => m.ownerId));
      for (const candidate of owners) {
        file = await repos.files.findByOcFileId(candidate, fileId);
        if (file) break;
      }
      if (file) ownerId = (await access.require(user.id, file.id, need)).ownerId;
    } else if (need !== 'read') await access.require(user.id, file.id, need);
    if (file?.kind !== 'file' || file.status !== 'active') throw new HttpError('not_found', 'no such file');
    return { user, ownerId, file, fileId, versionId };
  };

  const propfind = async (request: FastifyRequest, reply: FastifyReply) => {
    const { user, ownerId, file, fileId, versionId } = await target(request);
    const ask = parsePropfind(await xmlBody(request, XML_BODY_BYTES), 64);
    const wanted = ask.kind === 'allprop' ? 'all' : ask.kind === 'propname' ? 'names' : ask.props;
    const depth = String(request.headers.depth ?? '1');
    const folder = `${BASE}/${encodeURIComponent(user.username)}/versions/${fileId}/`;
    const items = (await versions.list(ownerId, file.id)).filter((v) => v.id !== CURRENT);
    const responses: DavResponse[] = [];
    if (versionId === undefined) {
      const values = new Map([[propKey(davProp('resourcetype')), '<D:collection/>']]);
      responses.push(answerOf(folder, values, wanted, LISTED));
    }
    if (versionId === undefined ? depth !== '0' : true) {
      const shown = versionId === undefined ? items : items.filter((v) => v.id === versionId);
      if (versionId !== undefined && shown.length === 0) throw new HttpError('not_found', 'no such version');
      for (const v of shown) {
        const values = new Map<string, string>([
          [propKey(davProp('displayname')), escapeXml(file.name)],
          [propKey(davProp('resourcetype')), ''],
          [propKey(davProp('getcontentlength')), String(v.size)],
          [propKey(davProp('getcontenttype')), escapeXml(file.mime ?? 'application/octet-stream')],
          [propKey(davProp('getlastmodified')), new Date(v.mtime ?? v.createdAt).toUTCString()],
          [propKey(davProp('getetag')), escapeXml(fileEntityTag(v.sha1))],
          [propKey(ncProp('version-author')), escapeXml(v.actor?.name ?? '')],
          [propKey(ncProp('version-label')), ''],
        ]);
        responses.push(answerOf(`${folder}${encodeURIComponent(v.id)}`, values, wanted, LISTED));
      }
    }
    return reply
      .status(207)
      .type('application/xml; charset=utf-8')
      .send(MULTISTATUS_HEAD + responses.map(responseXml).join('') + MULTISTATUS_TAIL);
  };

  const read = async (request: FastifyRequest, reply: FastifyReply) => {
    const { ownerId, file, versionId } = await target(request);
    if (versionId === undefined)
      throw new HttpError('method_not_allowed', "a file's versions are listed with PROPFIND");
    return downloads.send(request, reply, await versions.downloadable(ownerId, file.id, versionId));
  };

  /** MOVE of a version to `…/restore/target` (any name under restore/): it becomes the file's content. */
  const restore = async (request: FastifyRequest, reply: FastifyReply) => {
    const { user, ownerId, file, versionId } = await target(request, 'write');
    if (versionId === undefined)
      throw new HttpError('forbidden', 'a version is restored, not the folder of them');
    const to = davPath(destinationOf(request, app.config.publicUrl).pathname);
    const ownRestore =
      to.length === PREFIX_SEGMENTS + 2 &&
      to[PREFIX_SEGMENTS - 1] === user.username &&
      to[PREFIX_SEGMENTS] === 'restore';
    if (!to.join('/').startsWith('remote.php/dav/versions/') || !ownRestore)
      throw new HttpError(
        'forbidden',
        `a version is restored by a MOVE to ${BASE}/${user.username}/restore/target`,
      );
    const restored = await versions.restore(ownerId, file.id, versionId);
    return identityHeaders(reply, fileEntityTag(restored.sha1), restored.id).status(204).send();
  };

  const remove = async (request: FastifyRequest, reply: FastifyReply) => {
    const { ownerId, file, versionId } = await target(request, 'owner');
    if (versionId === undefined) throw new HttpError('forbidden', 'versions are deleted one at a time');
    await versions.delete(ownerId, file.id, versionId);
    return reply.status(204).send();
  };

  const schema = { hide: true };
  const config = { access: 'user' as const };
  for (const url of [`${BASE}/:user/*`]) {
    app.route({ url, method: 'PROPFIND', schema, config, handler: propfind });
    app.route({ url, method: ['GET', 'HEAD'], schema, config, handler: read, exposeHeadRoute: false });
    app.route({ url, method: 'MOVE', schema, config, handler: restore });
    app.route({ url, method: 'DELETE', schema, config, handler: remove });
  }
}
