import { ErrorBody, NodeList } from '@dfs/shared';
import type { AppInstance } from '../app.ts';
import { requireAdmin } from '../plugins/auth.ts';

export async function nodeRoutes(app: AppInstance): Promise<void> {
  const { cluster, repos } = app.services;
  app.get(
    '/api/nodes',
    { onRequest: requireAdmin, schema: { tags: ['nodes'], response: { 200: NodeList, '4xx': ErrorBody } } },
    async () => {
      const [rows, counts, underReplicated] = await Promise.all([
        cluster.describe(),
        repos.contents.countsByNode(),
        repos.contents.countUnderReplicated(cluster.wantedReplicas()),
      ]);
      return {
        items: rows.map((row) => ({
          id: row.id,
          name: row.name,
          kind: row.kind,
          status: row.draining ? ('draining' as const) : row.live ? ('up' as const) : ('down' as const),
          lastHeartbeatAt:
            row.last_heartbeat_at === null ? null : new Date(Number(row.last_heartbeat_at)).toISOString(),
          usedBytes: row.used_bytes === null ? null : Number(row.used_bytes),
          freeBytes: row.free_bytes === null ? null : Number(row.free_bytes),
          contents: counts.get(row.id) ?? 0,
        })),
        underReplicated,
      };
    },
  );
}
