import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';

export async function healthRoutes(app: AppInstance): Promise<void> {
  app.get('/healthz', { schema: { tags: ['operations'] } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { tags: ['operations'] } }, async () => {
    try {
      await app.services.repos.ping();
    } catch {
      throw new HttpError('not_ready', 'database unreachable');
    }
    const liveNodes = app.services.cluster.liveCount();
    if (liveNodes === 0) throw new HttpError('not_ready', 'no storage node is up');
    return { status: 'ready', liveNodes };
  });
}
