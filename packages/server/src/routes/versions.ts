import { ErrorBody, FileVersionList, RestoredVersion, VersionParams } from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { currentUser } from '../plugins/auth.ts';
import type { Need } from '../services/sharing/access.ts';

/** A file's versions: list, download, restore, delete (services/history/versions.ts). */
export async function versionRoutes(app: AppInstance): Promise<void> {
  const { versions, downloads, access } = app.services;
  // Inside a share: viewers list and download versions, editors also restore, the owner deletes.
  const ownerFor = async (request: FastifyRequest, id: string, need: Need) =>
    (await access.require(currentUser(request).id, id, need)).ownerId;

  app.get(
    '/api/files/:id/versions',
    {
      schema: {
        tags: ['versions'],
        summary: "A file's contents, newest first: the current one, then the versions kept",
        params: Type.Object({ id: VersionParams.properties.id }),
        response: { 200: FileVersionList, '4xx': ErrorBody },
      },
    },
    async (request) => ({
      items: await versions.list(await ownerFor(request, request.params.id, 'read'), request.params.id),
    }),
  );

  app.get(
    '/api/files/:id/versions/:versionId/content',
    {
      schema: {
        tags: ['versions'],
        summary: "A version's bytes (Range, ETag and inline previews as for the file's own)",
        params: VersionParams,
        querystring: Type.Object({
          inline: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('0')])),
        }),
      },
    },
    async (request, reply) => {
      const { id, versionId } = request.params;
      const file = await versions.downloadable(await ownerFor(request, id, 'read'), id, versionId);
      return downloads.send(request, reply, file, { inline: request.query.inline === '1' });
    },
  );

  app.post(
    '/api/files/:id/versions/:versionId/restore',
    {
      schema: {
        tags: ['versions'],
        summary: 'Make a version current again; the content it replaces is kept as a version',
        params: VersionParams,
        response: { 200: RestoredVersion, '4xx': ErrorBody },
      },
    },
    async (request) => {
      const { id, versionId } = request.params;
      return { file: await versions.restore(await ownerFor(request, id, 'write'), id, versionId) };
    },
  );

  app.delete(
    '/api/files/:id/versions/:versionId',
    {
      schema: {
        tags: ['versions'],
        summary: 'Delete a version for good (not the current content)',
        params: VersionParams,
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const { id, versionId } = request.params;
      await versions.delete(await ownerFor(request, id, 'owner'), id, versionId);
      return reply.status(204).send(null);
    },
  );
}
