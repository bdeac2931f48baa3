/// <reference path="./oidc-provider-types.d.ts" />
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Provider } from 'oidc-provider';

/** What the provider says about a person: their claims beyond `sub`. */
export type TestClaims = Record<string, unknown>;

export interface TestProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /**
   * People by subject. The sign-in page takes a subject as its login name (no password): a
   * subject not listed signs in with no claims but `sub`.
   */
  accounts: Map<string, TestClaims>;
  close(): Promise<void>;
}

/** One RSA key for the ID tokens (RS256, the algorithm every client supports) of every test provider. */
const signingKey = {
  ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  use: 'sig',
  kid: 'dfs-test',
};

const html = (body: string) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>Test provider</title></head><body>${body}</body></html>`;

async function formBody(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * A real OpenID provider (panva's oidc-provider, the certified one) on 127.0.0.1 with one static
 * confidential client, and a sign-in page of its own that signs in and consents in one step.
 */
export async function startTestProvider(redirectUris: string[], port = 0): Promise<TestProvider> {
  const accounts = new Map<string, TestClaims>();
  const clientId = 'dfs-test';
  const clientSecret = 'dfs-test-secret-0123456789abcdef';
  let provider: Provider | null = null;

  const server: Server = createServer((req, res) => {
    const match = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(req.url?.split('?')[0] ?? '');
    if (!provider) {
      res.statusCode = 503;
      res.end();
      return;
    }
    if (!match) {
      provider.callback()(req, res);
      return;
    }
    const uid = match[1];
    const ready = provider;
    (async () => {
      if (req.method === 'GET') {
        res.setHeader('content-type', 'text/html; charset=utf-8');
        res.end(
          html(
            `<form method="post" action="/interaction/${uid}"><label for="login">Login</label>` +
              '<input id="login" name="login" autocomplete="off"><button type="submit">Sign in</button></form>',
          ),
        );
        return;
      }
      const login = (await formBody(req)).get('login')?.trim();
      if (!login) {
        res.statusCode = 400;
        res.end('login required');
        return;
      }
      const details = await ready.interactionDetails(req, res);
      const grant = new ready.Grant({ accountId: login, clientId: String(details.params.client_id) });
      grant.addOIDCScope(String(details.params.scope ?? 'openid'));
      const grantId = await grant.save();
      await ready.interactionFinished(
        req,
        res,
        { login: { accountId: login }, consent: { grantId } },
        { mergeWithLastSubmission: false },
      );
    })().catch((error: unknown) => {
      res.statusCode = 500;
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    scopes: ['openid', 'profile', 'email', 'groups'],
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    cookies: { keys: ['dfs-test-provider-cookie-key'] },
    // Its own key and lifetimes, so the provider does not warn about its development defaults.
    jwks: { keys: [signingKey] },
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      IdToken: 600,
      Interaction: 600,
      Grant: 600,
      Session: 600,
    },
    findAccount: (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: () => ({ ...accounts.get(sub), sub }),
    }),
  });

  return {
    issuer,
    clientId,
    clientSecret,
    accounts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Walks a browser's way through the provider without a browser: from the authorization URL to
 * the sign-in page, signs in as `login`, and follows the redirects until the one that leaves the
 * provider, which is returned (the callback URL with the code and state).
 */
export async function passProvider(authorizationUrl: string, login: string): Promise<URL> {
  const jar = new Map<string, string>();
  const origin = new URL(authorizationUrl).origin;
  let url = new URL(authorizationUrl);
  let body: URLSearchParams | undefined;
  for (let hop = 0; hop < 10; hop++) {
    const res = await fetch(url, {
      method: body ? 'POST' : 'GET',
      redirect: 'manual',
      headers: {
        cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; '),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(body ? { body: body.toString() } : {}),
    });
    body = undefined;
    for (const cookie of res.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      const at = pair.indexOf('=');
      jar.set(pair.slice(0, at), pair.slice(at + 1));
    }
    const location = res.headers.get('location');
    if (location) {
      url = new URL(location, url);
      if (url.origin !== origin) return url;
      continue;
    }
    if (res.status === 200 && url.pathname.startsWith('/interaction/')) {
      await res.arrayBuffer();
      body = new URLSearchParams({ login });
      continue;
    }
    throw new Error(`the provider answered ${res.status} at ${url.pathname}: ${await res.text()}`);
  }
  throw new Error('too many redirects at the provider');
}
