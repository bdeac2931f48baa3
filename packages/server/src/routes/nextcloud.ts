import { ErrorBody, LoginFlow, LoginFlowApproved, LoginFlowParams, type Usage } from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';
import { escapeXml } from '../http/dav-xml.ts';
import { basicCredentials, currentUser } from '../plugins/auth.ts';
import { LoginFlowService } from '../services/protocols/login-flows.ts';

/**
 * The Nextcloud version dfs answers as. Clients gate features on capabilities, not on this; the
 * GUI clients refuse servers below 20 and warn below 26, so it names a real release above both.
 */
const VERSION = { major: 30, minor: 0, micro: 5, string: '30.0.5', edition: '', extendedSupport: false };

/**
 * What dfs offers the Nextcloud clients. Every key here switches something on in them, so only
 * what exists (or lands with this release) is listed: no bulk upload (the client would POST
 * small files to an endpoint dfs lacks), no locking, sharing, encryption or notify_push.
 */
const CAPABILITIES = {
  core: { pollinterval: 60, 'webdav-root': 'remote.php/webdav' },
  // Without it the clients fall back to the ancient "-chunking-" PUTs, which dfs never serves.
  dav: { chunking: '1.0' },
  files: { bigfilechunking: true, undelete: true, versioning: true },
  checksums: { supportedTypes: ['SHA1'], preferredUploadType: 'SHA1' },
};

/** Login flows an address may start per 10 minutes. */
const FLOW_STARTS_PER_WINDOW = 60;

type OcsValue = string | number | boolean | null | OcsValue[] | { [key: string]: OcsValue };

/** OCS's XML form: lists as `<element>` children, booleans as 1 or nothing, null as nothing. */
function ocsXml(value: OcsValue): string {
  if (value === null || value === false) return '';
  if (value === true) return '1';
  if (typeof value !== 'object') return escapeXml(String(value));
  if (Array.isArray(value)) return value.map((v) => `<element>${ocsXml(v)}</element>`).join('');
  return Object.entries(value)
    .map(([k, v]) => `<${k}>${ocsXml(v)}</${k}>`)
    .join('');
}

/** JSON when `format=json` or an Accept of JSON asks for it; XML otherwise (OCS's default). */
function wantsJson(request: FastifyRequest): boolean {
  const format = (request.query as { format?: unknown }).format;
  if (format === 'json') return true;
  if (format === 'xml') return false;
  return /application\/json/i.test(request.headers.accept ?? '');
}

/** OCS's envelope; v1 says "100" for OK, v2 says 200, and both answer HTTP 200. */
function sendOcs(request: FastifyRequest, reply: FastifyReply, version: 1 | 2, data: OcsValue) {
  const meta = { status: 'ok', statuscode: version === 1 ? 100 : 200, message: 'OK' };
  if (wantsJson(request)) return reply.type('application/json; charset=utf-8').send({ ocs: { meta, data } });
  return reply
    .type('application/xml; charset=utf-8')
    .send(`<?xml version="1.0"?>\n<ocs>${ocsXml({ meta, data })}</ocs>\n`);
}

/** A form or JSON body's fields; anything else (or nothing, or bad JSON) is no fields. */
function looseBody(type: string | undefined, body: string): Record<string, unknown> {
  if (/^application\/x-www-form-urlencoded/i.test(type ?? ''))
    return Object.fromEntries(new URLSearchParams(body));
  if (/^application\/json/i.test(type ?? '')) {
    try {
      const parsed: unknown = JSON.parse(body);
      return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  }
  return {};
}

/** `quota` in OCS terms: -3 means no quota; `relative` is a percentage. */
function ocsQuota(usage: Usage) {
  const used = usage.usedBytes;
  if (usage.quotaBytes === null) return { free: -3, used, total: -3, relative: 0, quota: -3 };
  const total = usage.quotaBytes;
  const relative = total > 0 ? Math.round((used / total) * 10_000) / 100 : 0;
  return { free: Math.max(0, total - used), used, total, relative, quota: total };
}

/**
 * What the Nextcloud desktop and mobile apps (and `nextcloudcmd`) ask before they sync:
 * status.php, the OCS capabilities and user, and Login Flow v2, through which they sign in.
 * The OCS calls take HTTP Basic with an app password, as /dav/ does (never the account password).
 */
export async function nextcloudRoutes(app: AppInstance): Promise<void> {
  const { auth, limits } = app.services;
  const flows = new LoginFlowService(app.services.repos, app.services.now);
  const baseUrl = (request: FastifyRequest) =>
    app.config.publicUrl ?? `${request.protocol}://${request.host}`;

  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode === 401 && request.url.startsWith('/ocs/')) {
      reply.header('WWW-Authenticate', 'Basic realm="dfs", charset="UTF-8"');
    }
    return payload;
  });

  /** The OCS caller: Basic with an app password, or a Bearer token; a session cookie is not enough. */
  const ocsUser = async (request: FastifyRequest) => {
    const basic = basicCredentials(request);
    if (basic) {
      const found = await auth.authenticateBasic(basic.username, basic.password);
      // These routes are public, so the auth hook left the gate to them (DFS_REQUIRE_2FA).
      if (found?.secondFactorGate) {
        throw new HttpError(
          found.secondFactorGate,
          'this server requires two-factor sign-in: set one up in the web app first',
        );
      }
      if (found) return found.user;
    } else if (request.headers.authorization?.startsWith('Bearer ') && request.auth) {
      return request.auth.user;
    }
    throw new HttpError('unauthorized', 'sign in with your username and an app password');
  };

  const ocs = { schema: { hide: true }, config: { access: 'public' as const } };

  // Public, and never 401: the apps send their credentials along with this very first request,
  // and an answer of 401 here reads to them as "no server".
  app.get('/status.php', ocs, async () => ({
    installed: true,
    maintenance: false,
    needsDbUpgrade: false,
    version: `${VERSION.string}.1`,
    versionstring: VERSION.string,
    edition: '',
    productname: 'dfs',
    extendedSupport: false,
  }));

  for (const version of [1, 2] as const) {
    app.get(`/ocs/v${version}.php/cloud/capabilities`, ocs, async (request, reply) => {
      await ocsUser(request);
      return sendOcs(request, reply, version, { version: VERSION, capabilities: CAPABILITIES });
    });

    app.get(`/ocs/v${version}.php/cloud/user`, ocs, async (request, reply) => {
      const user = await ocsUser(request);
      const usage = await limits.usage(user.id);
      return sendOcs(request, reply, version, {
        enabled: true,
        // The DAV user: clients build /remote.php/dav/files/<id>/ from it.
        id: user.username,
        'display-name': user.username,
        displayname: user.username,
        email: null,
        quota: ocsQuota(usage),
      });
    });
  }

  // The apps' side of Login Flow v2. They send the poll's token as a form (or JSON), and some
  // send a body of any type, or an empty one, with the start: the body is read loosely here.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 64 * 1024 }, (request, body, done) =>
      done(null, looseBody(request.headers['content-type'], body as string)),
    );

    // Anyone may start a flow, and each is a row: an address gets a few a minute, far more than
    // people signing in apps need.
    const startLimit = {
      max: FLOW_STARTS_PER_WINDOW,
      timeWindow: 600_000,
      keyGenerator: (request: FastifyRequest) => `login-flow:${request.ip}`,
    };
    scope.post(
      '/index.php/login/v2',
      { ...ocs, config: { ...ocs.config, rateLimit: startLimit } },
      async (request, reply) => {
        const { pollToken, flowToken } = await flows.start(request.headers['user-agent']);
        const base = baseUrl(request);
        reply.header('cache-control', 'no-store');
        return {
          poll: { token: pollToken, endpoint: `${base}/index.php/login/v2/poll` },
          login: `${base}/index.php/login/v2/flow/${flowToken}`,
        };
      },
    );

    // Login Flow v1, which the mobile apps open in a webview: the same question page, which once
    // allowed sends the webview to `grant` below with the flow's poll token.
    scope.get(
      '/index.php/login/flow',
      { ...ocs, config: { ...ocs.config, rateLimit: startLimit } },
      async (request, reply) => {
        const { pollToken, flowToken } = await flows.start(request.headers['user-agent']);
        reply.header('cache-control', 'no-store');
        return reply.redirect(
          `/connect/${encodeURIComponent(flowToken)}?grant=${encodeURIComponent(pollToken)}`,
          303,
        );
      },
    );

    // The browser lands here; the page that asks the user is the web app's.
    scope.get('/index.php/login/v2/flow/:flowToken', ocs, async (request, reply) => {
      const { flowToken } = request.params as { flowToken: string };
      return reply.redirect(`/connect/${encodeURIComponent(flowToken)}`, 303);
    });

    // 404 until the user allows the app, then the credentials once, then 404 again (Nextcloud's way).
    scope.post('/index.php/login/v2/poll', ocs, async (request, reply) => {
      const body = request.body as { token?: unknown } | null | undefined;
      const query = request.query as { token?: unknown };
      const token =
        typeof body?.token === 'string' ? body.token : typeof query.token === 'string' ? query.token : '';
      const found = await flows.poll(token);
      if (!found) return reply.status(404).send({});
      reply.header('cache-control', 'no-store');
      return { server: baseUrl(request), loginName: found.loginName, appPassword: found.appPassword };
    });
  });

  /** Allowing an app mints an app password: a leaked app password must not do that. */
  const sessionUser = (request: FastifyRequest) => {
    if (request.auth?.appPasswordId) {
      throw new HttpError('forbidden', 'apps are allowed from a signed-in session, not with an app password');
    }
    // Allowing an app mints an app password: the session must have passed two-factor sign-in.
    if (request.auth?.secondFactorMissing) {
      throw new HttpError(
        'second_factor_required',
        'apps are allowed from a session that passed two-factor sign-in; sign out and sign in again with your code',
      );
    }
    return currentUser(request);
  };

  // v1's end: the credentials go to the app in the `nc://` URL its webview is watching for.
  app.get(
    '/index.php/login/flow/grant',
    { schema: { hide: true }, config: { access: 'user' as const } },
    async (request, reply) => {
      const user = sessionUser(request);
      const { token } = request.query as { token?: unknown };
      const found = await flows.grant(typeof token === 'string' ? token : '', user.id);
      if (!found)
        throw new HttpError('not_found', 'this sign-in request is unknown, not yours, or already used');
      reply.header('cache-control', 'no-store');
      const enc = encodeURIComponent;
      return reply.redirect(
        `nc://login/server:${baseUrl(request)}&user:${enc(found.loginName)}&password:${enc(found.appPassword)}`,
        303,
      );
    },
  );

  app.get(
    '/api/login-flows/:flowToken',
    {
      schema: {
        tags: ['auth'],
        summary: 'A Nextcloud app asking to sign in (Login Flow v2), while it waits for an answer',
        params: LoginFlowParams,
        response: { 200: LoginFlow, '4xx': ErrorBody },
      },
    },
    async (request) => {
      sessionUser(request);
      return flows.describe(request.params.flowToken);
    },
  );

  app.post(
    '/api/login-flows/:flowToken/approve',
    {
      schema: {
        tags: ['auth'],
        summary: 'Allow the app: a new app password named after it goes to its next poll, once',
        params: LoginFlowParams,
        response: { 200: LoginFlowApproved, '4xx': ErrorBody },
      },
    },
    async (request) => {
      const user = sessionUser(request);
      const appPassword = await flows.approve(user.id, request.params.flowToken);
      await app.services.audit.record({
        action: 'app_password.created',
        target: { type: 'app_password', id: appPassword.id },
        details: { name: appPassword.name, scope: appPassword.scope, via: 'login_flow' },
      });
      return { appPassword };
    },
  );

  app.post(
    '/api/login-flows/:flowToken/deny',
    {
      schema: {
        tags: ['auth'],
        summary: 'Refuse the app: its poll never gets credentials',
        params: LoginFlowParams,
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      sessionUser(request);
      await flows.deny(request.params.flowToken);
      return reply.status(204).send(null);
    },
  );
}
