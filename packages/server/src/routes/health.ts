import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';

export async function healthRoutes(app: AppInstance): Promise<void> {
  app.get('/healthz', { schema: { tags: ['operations'] } }, async () => ({ status: 'ok' }));

  // Every reason at once, so an operator reading a probe's failure sees all there is to fix.
  app.get('/readyz', { schema: { tags: ['operations'] } }, async () => {
    const { ready, reasons, liveNodes } = await app.services.readiness.check();
    if (!ready) {
      throw new HttpError('not_ready', reasons.map((reason) => reason.message).join('; '), { reasons });
    }
    return { status: 'ready', liveNodes };
  });
}
