import {
  AlertList,
  ErrorBody,
  JobParams,
  RestoreBody,
  RestoreResult,
  RestoreStarted,
  UserJob,
} from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import type { AppInstance } from '../app.ts';
import { currentUser, sessionOnly } from '../plugins/auth.ts';
import type { RestoreStart } from '../services/history/restore.ts';

/** Point-in-time restore, its jobs, and the mass-change alerts that offer one (services/history). */
export async function restoreRoutes(app: AppInstance): Promise<void> {
  const { restores, userJobs, alerts } = app.services;
  const answer = (reply: FastifyReply, started: RestoreStart) =>
    'jobId' in started ? reply.status(202).send({ jobId: started.jobId }) : reply.send(started.done);
  const restoreResponses = { 200: RestoreResult, 202: RestoreStarted, '4xx': ErrorBody };

  app.post(
    '/api/restore',
    {
      schema: {
        tags: ['history'],
        summary:
          'Puts a folder (or, with folderId null, the whole account) back as it was at a time: 200 with counts, or 202 with a job to follow',
        body: RestoreBody,
        response: restoreResponses,
      },
    },
    async (request, reply) => {
      const { folderId, at } = request.body;
      // A restore rewrites a whole folder: its owner's to do, even inside a share (403 says so).
      if (folderId) await app.services.access.require(currentUser(request).id, folderId, 'owner');
      return answer(reply, await restores.start(currentUser(request).id, folderId, Date.parse(at)));
    },
  );

  app.get(
    '/api/jobs/:id',
    {
      schema: {
        tags: ['history'],
        summary: "A long restore's progress and, once done, its counts",
        params: JobParams,
        response: { 200: UserJob, '4xx': ErrorBody },
      },
    },
    async (request) => userJobs.get(currentUser(request).id, request.params.id),
  );

  app.get(
    '/api/alerts',
    {
      schema: {
        tags: ['history'],
        summary: 'Bursts of changes by one actor (mass-change alerts) not yet undone or dismissed',
        response: { 200: AlertList, '4xx': ErrorBody },
      },
    },
    async (request) => ({ items: await alerts.list(currentUser(request).id) }),
  );

  app.post(
    '/api/alerts/:id/undo',
    {
      schema: {
        tags: ['history'],
        summary: "Restores the alert's folder to just before the burst (answers as POST /api/restore)",
        params: JobParams,
        response: restoreResponses,
      },
    },
    async (request, reply) => {
      const userId = sessionOnly(request, 'alerts are undone').id;
      return answer(
        reply,
        await alerts.undo(userId, request.params.id, (folderId, at, succeeded) =>
          restores.start(userId, folderId, at, succeeded),
        ),
      );
    },
  );

  app.delete(
    '/api/alerts/:id',
    {
      schema: {
        tags: ['history'],
        summary: 'Dismisses an alert (its changes stay)',
        params: JobParams,
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      await alerts.dismiss(sessionOnly(request, 'alerts are dismissed').id, request.params.id);
      return reply.status(204).send(null);
    },
  );
}
