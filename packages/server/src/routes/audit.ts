import { Readable } from 'node:stream';
import { AuditPage, AuditQuery, ErrorBody } from '@dfs/shared';
import type { AppInstance } from '../app.ts';

/** The audit log, for administrators only (services/operations/audit.ts keeps it). */
export async function auditRoutes(app: AppInstance): Promise<void> {
  const { audit } = app.services;

  app.get(
    '/api/admin/audit',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['admin'],
        summary: 'Audit events, newest first: sign-ins, access changes, administration, restores, backups',
        querystring: AuditQuery,
        response: { 200: AuditPage, '4xx': ErrorBody },
      },
    },
    async (request) => audit.page(request.query),
  );

  app.get(
    '/api/admin/audit/export',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['admin'],
        summary: 'Every audit event the filters match, newest first, as JSON lines (one event a line)',
        querystring: AuditQuery,
        produces: ['application/x-ndjson'],
      },
    },
    async (request, reply) => {
      const { limit: _limit, cursor: _cursor, ...filters } = request.query;
      const events = audit.all(filters);
      // The first batch is read before the answer starts, so a bad filter is still a 400.
      const first = await events.next();
      async function* lines() {
        if (first.done) return;
        yield `${JSON.stringify(first.value)}\n`;
        for await (const event of events) yield `${JSON.stringify(event)}\n`;
      }
      const stamp = new Date(app.services.now()).toISOString().slice(0, 10);
      return reply
        .type('application/x-ndjson')
        .header('Content-Disposition', `attachment; filename="dfs-audit-${stamp}.jsonl"`)
        .send(Readable.from(lines(), { objectMode: false }));
    },
  );
}
