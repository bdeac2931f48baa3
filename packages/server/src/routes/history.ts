import { ErrorBody, HistoryPage, HistoryQuery } from '@dfs/shared';
import type { AppInstance } from '../app.ts';
import { currentUser } from '../plugins/auth.ts';

/** The history of a user's tree (services/history/history.ts). */
export async function historyRoutes(app: AppInstance): Promise<void> {
  const { sharedTree } = app.services;
  app.get(
    '/api/history',
    {
      schema: {
        tags: ['history'],
        summary:
          'Every change to your files, newest first: by folder (all levels down, a folder shared with you too), time and actor',
        querystring: HistoryQuery,
        response: { 200: HistoryPage, '4xx': ErrorBody },
      },
    },
    async (request) => sharedTree.historyPage(currentUser(request).id, request.query),
  );
}
