import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';

/**
 * Every route of the OpenAPI document, called without a session, must answer 401 unless it is on
 * this list; every admin route must answer 403 to a user who is not an admin. A new route is
 * covered the moment it is added, and is private unless it says `config: { access: 'public' }`.
 */
const PUBLIC = new Set([
  'GET /healthz',
  'GET /readyz',
  'POST /api/auth/signup',
  'POST /api/auth/signin',
  'GET /api/auth/oidc',
  'POST /api/auth/oidc/start',
  'GET /api/auth/oidc/callback',
  'POST /api/auth/passkeys/signin-options',
  'POST /api/auth/passkeys/signin',
  'GET /api/public/shares/{token}',
  'POST /api/public/shares/{token}/grants',
  'GET /api/public/shares/{token}/content',
  'POST /api/public/shares/{token}/files',
  'POST /api/public/shares/{token}/uploads',
  'GET /api/public/shares/{token}/uploads/{uploadId}',
  'PUT /api/public/shares/{token}/uploads/{uploadId}/chunks/{index}',
  'POST /api/public/shares/{token}/uploads/{uploadId}/complete',
  'DELETE /api/public/shares/{token}/uploads/{uploadId}',
]);

const ADMIN = new Set([
  'GET /api/nodes',
  'POST /api/nodes/{id}/drain',
  'POST /api/nodes/{id}/undrain',
  'GET /api/admin/users',
  'POST /api/admin/users',
  'PATCH /api/admin/users/{id}',
  'POST /api/admin/users/{id}/password',
  'GET /api/admin/users/{id}/identities',
  'POST /api/admin/users/{id}/identities',
  'DELETE /api/admin/users/{id}/identities/{identityId}',
  'DELETE /api/admin/users/{id}/two-factor',
  'POST /api/admin/users/{id}/disable',
  'POST /api/admin/users/{id}/enable',
  'POST /api/admin/invites',
  'GET /api/admin/invites',
  'DELETE /api/admin/invites/{id}',
  'GET /api/admin/groups',
  'POST /api/admin/groups',
  'DELETE /api/admin/groups/{id}',
  'GET /api/admin/groups/{id}/members',
  'POST /api/admin/groups/{id}/members',
  'DELETE /api/admin/groups/{id}/members/{username}',
  'GET /api/admin/audit',
  'GET /api/admin/audit/export',
  'GET /api/admin/stats',
  'POST /api/admin/stats/sample',
]);

describe('route access', () => {
  let t: TestApp;
  let routes: { method: string; path: string; url: string }[];
  let user: Awaited<ReturnType<TestApp['user']>>;

  beforeAll(async () => {
    t = await startTestApp();
    await t.user('admin'); // the first account is the admin
    user = await t.user('someone');
    await t.app.ready();
    const doc = t.app.swagger() as { paths: Record<string, Record<string, unknown>> };
    routes = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods)
        .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
        .map((m) => ({
          method: m.toUpperCase(),
          path,
          url: path.replace(/\{[^}]+\}/g, 'zz0000000000000000000000'),
        })),
    );
  });
  afterAll(() => t?.close());

  const call = (route: { method: string; url: string }, headers: Record<string, string> = {}) =>
    t.app.inject({
      method: route.method as 'GET',
      url: route.url,
      headers: { ...headers, ...(route.method === 'GET' ? {} : { 'content-type': 'application/json' }) },
      ...(route.method === 'GET' ? {} : { payload: '{}' }),
    });

  it('finds the routes in the OpenAPI document', () => {
    expect(routes.length).toBeGreaterThan(30);
    for (const name of [...PUBLIC, ...ADMIN]) {
      expect(
        routes.map((r) => `${r.method} ${r.path}`),
        name,
      ).toContain(name);
    }
  });

  it('answers 401 without a session on every route that is not public', async () => {
    const open: string[] = [];
    for (const route of routes) {
      const name = `${route.method} ${route.path}`;
      const res = await call(route);
      if (PUBLIC.has(name)) {
        expect(res.statusCode, name).not.toBe(401);
      } else if (res.statusCode !== 401 || errorCode(res) !== 'unauthorized') {
        open.push(`${name} → ${res.statusCode}`);
      }
    }
    expect(open).toEqual([]);
  });

  it('answers 403 to a signed-in user who is not an admin on every admin route', async () => {
    const wrong: string[] = [];
    for (const route of routes) {
      const name = `${route.method} ${route.path}`;
      // Signing out would end the session the rest of the loop uses.
      if (name === 'POST /api/auth/signout') continue;
      const res = await call(route, user.headers);
      const forbidden = res.statusCode === 403 && errorCode(res) === 'forbidden';
      if (ADMIN.has(name) !== forbidden) wrong.push(`${name} → ${res.statusCode}`);
    }
    expect(wrong).toEqual([]);
  });

  it('keeps unknown API URLs a JSON 404 and the OpenAPI document public', async () => {
    const unknown = await t.app.inject({ method: 'GET', url: '/api/no-such-route' });
    expect(unknown.statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: '/api/openapi.json' })).statusCode).toBe(200);
  });
});
