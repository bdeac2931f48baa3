import { ErrorBody, StatsQuery, StatsResponse } from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { AppInstance } from '../app.ts';

/** The admin dashboard's data: the app's own time series and a snapshot of now. */
export async function statsRoutes(app: AppInstance): Promise<void> {
  const { stats } = app.services;
  app.get(
    '/api/admin/stats',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['admin'],
        summary: 'Time series (hourly for 24h and 7d, daily for 30d) and a snapshot, for the dashboard',
        querystring: StatsQuery,
        response: { 200: StatsResponse, '4xx': ErrorBody },
      },
    },
    async (request) => stats.read(request.query.range ?? '24h'),
  );

  app.post(
    '/api/admin/stats/sample',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['admin'],
        summary:
          "Sample now instead of at the next minute: this instance's counters and the database's figures",
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (_request, reply) => {
      await stats.sampleNow();
      return reply.status(204).send(null);
    },
  );
}
