import {
  ErrorBody,
  IdentityList,
  IdentityResponse,
  LinkIdentityBody,
  OidcInfo,
  OidcStartBody,
  OidcStartResponse,
} from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';
import { SESSION_COOKIE, sessionClient } from '../plugins/auth.ts';
import type { IdentityRow } from '../repositories/identities.ts';
import { listLinks, unlink } from '../services/identity/links.ts';
import { OidcService } from '../services/identity/oidc.ts';

/** The state of the sign-in this browser started, so only this browser can finish it. */
const STATE_COOKIE = 'dfs_oidc_state';
const CALLBACK_PATH = '/api/auth/oidc/callback';

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

function identityInfo(row: IdentityRow) {
  return {
    id: row.id,
    provider: row.provider,
    issuer: row.issuer,
    subject: row.subject,
    createdAt: new Date(Number(row.created_at)).toISOString(),
    lastUsedAt: iso(row.last_used_at),
  };
}

/** Single sign-on with an OpenID Connect provider (DFS_OIDC_*). */
export async function oidcRoutes(app: AppInstance): Promise<void> {
  const { config } = app;
  const oidc = config.oidc
    ? new OidcService(app.services.repos, app.services.auth, {
        config: config.oidc,
        signup: config.signup,
        now: app.services.now,
        log: app.log,
      })
    : null;

  const configured = (): OidcService => {
    if (!oidc) throw new HttpError('not_found', 'single sign-on is not set up on this server');
    return oidc;
  };

  /** The callback URL the provider has registered: set, or this server's own origin. */
  const redirectUri = (request: FastifyRequest) =>
    config.oidc?.redirectUrl ??
    `${config.publicUrl ?? `${request.protocol}://${request.host}`}${CALLBACK_PATH}`;

  app.get(
    '/api/auth/oidc',
    {
      schema: {
        tags: ['auth'],
        summary: 'Whether single sign-on is set up, and the name for its button',
        response: { 200: OidcInfo },
      },
      config: { access: 'public' },
    },
    async () => ({ enabled: oidc !== null, name: oidc?.name ?? null }),
  );

  app.post(
    '/api/auth/oidc/start',
    {
      schema: {
        tags: ['auth'],
        summary: "Start a sign-in with the OpenID provider: the browser goes to the answer's url",
        body: OidcStartBody,
        response: { 200: OidcStartResponse, '4xx': ErrorBody, '5xx': ErrorBody },
      },
      // Each start stores a row until it expires: an address may only start so many.
      config: {
        access: 'public',
        rateLimit: {
          max: config.signinRateLimit,
          timeWindow: 60_000,
          keyGenerator: (request) => `oidc:${request.ip}`,
        },
      },
    },
    async (request, reply) => {
      const { url, state } = await configured().start(redirectUri(request), request.body.returnTo);
      reply.setCookie(STATE_COOKIE, state, {
        httpOnly: true,
        // Lax: the provider's redirect back is a top-level navigation from another site.
        sameSite: 'lax',
        secure: 'auto',
        path: '/api/auth/oidc',
        maxAge: 600,
      });
      return { url };
    },
  );

  app.get(
    CALLBACK_PATH,
    {
      schema: {
        tags: ['auth'],
        summary:
          'Where the provider sends the browser back: signs in and redirects into the app, or to the sign-in page with `ssoError=<code>`',
        querystring: Type.Object({}, { additionalProperties: Type.String({ maxLength: 8192 }) }),
        response: { 302: Type.Null() },
      },
      config: { access: 'public' },
    },
    async (request, reply) => {
      const query = new URLSearchParams(
        request.url.slice(request.url.indexOf('?') + 1 || request.url.length),
      );
      reply.clearCookie(STATE_COOKIE, { path: '/api/auth/oidc' });
      try {
        const done = await configured().finish(query, request.cookies[STATE_COOKIE], sessionClient(request));
        reply.setCookie(SESSION_COOKIE, done.token, {
          httpOnly: true,
          sameSite: 'lax',
          secure: 'auto',
          path: '/',
          maxAge: Math.floor(config.sessionTtlMs / 1000),
        });
        return reply.redirect(done.returnTo, 302);
      } catch (error) {
        if (!(error instanceof HttpError)) throw error;
        // A page the person sees: the sign-in page says what went wrong, in their language.
        request.log.info({ code: error.code, message: error.message }, 'single sign-on refused');
        return reply.redirect(`/signin?ssoError=${encodeURIComponent(error.code)}`, 302);
      }
    },
  );

  const userParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

  app.get(
    '/api/admin/users/:id/identities',
    {
      schema: {
        tags: ['admin'],
        summary: "The user's links to the OpenID provider and the directory",
        params: userParams,
        response: { 200: IdentityList, '4xx': ErrorBody },
      },
      config: { access: 'admin' },
    },
    async (request) => {
      const rows = await listLinks(app.services.repos, request.params.id);
      return { items: rows.map(identityInfo) };
    },
  );

  app.post(
    '/api/admin/users/:id/identities',
    {
      schema: {
        tags: ['admin'],
        summary:
          'Link the user to a subject (`sub`) at the OpenID provider: that person signs in as this user',
        params: userParams,
        body: LinkIdentityBody,
        response: { 201: IdentityResponse, '4xx': ErrorBody, '5xx': ErrorBody },
      },
      config: { access: 'admin' },
    },
    async (request, reply) => {
      const row = await configured().link(request.params.id, request.body.subject);
      return reply.status(201).send({ identity: identityInfo(row) });
    },
  );

  app.delete(
    '/api/admin/users/:id/identities/:identityId',
    {
      schema: {
        tags: ['admin'],
        summary: 'Unlink: that identity no longer signs in as this user',
        params: Type.Object({
          id: Type.String({ minLength: 1, maxLength: 64 }),
          identityId: Type.String({ minLength: 1, maxLength: 64 }),
        }),
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
      config: { access: 'admin' },
    },
    async (request, reply) => {
      await unlink(app.services.repos, request.params.id, request.params.identityId);
      return reply.status(204).send(null);
    },
  );
}
