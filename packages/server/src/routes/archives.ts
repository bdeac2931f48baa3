import { Archive, CreateArchiveBody, ErrorBody } from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { AppInstance } from '../app.ts';
import { attachmentDisposition } from '../http/download-responder.ts';
import { currentUser } from '../plugins/auth.ts';

export async function archiveRoutes(app: AppInstance): Promise<void> {
  const { archives } = app.services;

  app.post(
    '/api/archives',
    {
      schema: {
        tags: ['files'],
        summary: 'Download a selection (files and folders) as one ZIP: returns the URL to navigate to',
        body: CreateArchiveBody,
        response: { 201: Archive, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const { token: _token, ...archive } = await archives.create(currentUser(request).id, request.body);
      return reply.status(201).send(archive);
    },
  );

  app.get(
    '/api/archives/:token',
    {
      schema: {
        tags: ['files'],
        summary: 'The ZIP, streamed as it is read from the storage nodes',
        params: Type.Object({ token: Type.String({ minLength: 1, maxLength: 128 }) }),
        produces: ['application/zip'],
      },
    },
    async (request, reply) => {
      const { name, stream, size } = await archives.open(currentUser(request).id, request.params.token);
      reply
        .type('application/zip')
        .header('Content-Disposition', attachmentDisposition(name))
        .header('Cache-Control', 'no-store')
        .header('X-Content-Type-Options', 'nosniff')
        .header('Content-Security-Policy', "default-src 'none'; sandbox");
      if (size !== null) reply.header('Content-Length', size);
      // A node failing mid-archive cuts the response: the browser reports a failed download
      // instead of saving a ZIP with a hole in it.
      stream.on('error', (err) => {
        request.log.warn({ err }, 'archive stopped');
        reply.raw.destroy(err);
      });
      return reply.send(stream);
    },
  );
}
