import { ErrorBody, NodeList, NodeResponse } from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { AppInstance } from '../app.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

export async function nodeRoutes(app: AppInstance): Promise<void> {
  const { cluster, nodeStatus, jobs, clusterJobs, audit } = app.services;
  app.get(
    '/api/nodes',
    {
      config: { access: 'admin' },
      schema: { tags: ['nodes'], response: { 200: NodeList, '4xx': ErrorBody } },
    },
    async () => nodeStatus.describe(),
  );

  // Draining empties a node before it leaves: no new copies go to it, and the repair job moves
  // its copies elsewhere, then deletes them from it. Undrain puts it back in service.
  for (const [action, draining] of [
    ['drain', true],
    ['undrain', false],
  ] as const) {
    app.post(
      `/api/nodes/:id/${action}`,
      {
        config: { access: 'admin' },
        schema: { tags: ['nodes'], params: IdParams, response: { 200: NodeResponse, '4xx': ErrorBody } },
      },
      async (request) => {
        await cluster.setDraining(request.params.id, draining);
        await audit.record({
          action: draining ? 'node.drained' : 'node.undrained',
          target: { type: 'node', id: request.params.id },
        });
        // A migration starts now rather than at the repair job's next tick.
        if (draining) jobs.kick(clusterJobs.repair);
        return { node: await nodeStatus.describeNode(request.params.id) };
      },
    );
  }
}
