import type { FastifyBaseLogger } from 'fastify';
import * as oidc from 'openid-client';
import type { OidcConfig } from '../../config.ts';
import { isUniqueViolation } from '../../db/knex.ts';
import { HttpError } from '../../errors.ts';
import type { IdentityRow } from '../../repositories/identities.ts';
import type { Repositories } from '../../repositories/index.ts';
import type { SessionClient } from '../../repositories/sessions.ts';
import type { UserRow } from '../../repositories/users.ts';
import type { AuthService, SignupMode } from '../auth.ts';
import { newId } from '../ids.ts';
import { syncGroups } from './groups.ts';
import { usernameCandidates } from './usernames.ts';

/** A sign-in left at the provider's page is forgotten after this long. */
const LOGIN_TTL_MS = 10 * 60_000;
/** Discovery and token requests: a provider that does not answer must not hold a sign-in forever. */
const PROVIDER_TIMEOUT_SECONDS = 10;

export interface OidcOptions {
  config: OidcConfig;
  signup: SignupMode;
  now: () => number;
  log: FastifyBaseLogger;
}

export interface OidcSignin {
  token: string;
  userId: string;
  returnTo: string;
}

const unavailable = (error: unknown) =>
  new HttpError(
    'oidc_unavailable',
    `the sign-in provider cannot be reached; try again later (${(error as Error)?.message ?? error})`,
  );

const failed = (message: string) => new HttpError('oidc_failed', message);

/** Whether a failure is the network's (the provider down or slow) rather than a refused answer. */
function isNetworkError(error: unknown): boolean {
  const e = error as { name?: string; message?: string } | null;
  return (
    e?.name === 'TimeoutError' ||
    e?.name === 'AbortError' ||
    (error instanceof TypeError && /fetch failed|network/i.test(e?.message ?? ''))
  );
}

/**
 * OpenID Connect sign-in (authorization code with PKCE, state and nonce) with openid-client.
 * The provider is discovered on first use, not at boot: a provider that is down must not keep
 * dfs from starting, and a failed discovery is tried again at the next sign-in.
 */
export class OidcService {
  private discovered: Promise<oidc.Configuration> | null = null;

  constructor(
    private readonly repos: Repositories,
    private readonly auth: AuthService,
    private readonly options: OidcOptions,
  ) {}

  get name(): string {
    return this.options.config.name;
  }

  get issuer(): string {
    return this.options.config.issuer;
  }

  private async configuration(): Promise<oidc.Configuration> {
    const { issuer, clientId, clientSecret } = this.options.config;
    this.discovered ??= oidc.discovery(
      new URL(issuer),
      clientId,
      clientSecret ?? undefined,
      clientSecret ? oidc.ClientSecretBasic(clientSecret) : oidc.None(),
      {
        timeout: PROVIDER_TIMEOUT_SECONDS,
        // An http:// issuer is a choice the admin made (a provider on the same host or in tests).
        ...(issuer.startsWith('http:') ? { execute: [oidc.allowInsecureRequests] } : {}),
      },
    );
    try {
      return await this.discovered;
    } catch (error) {
      this.discovered = null;
      this.options.log.warn({ err: error, issuer }, 'OpenID provider discovery failed');
      throw unavailable(error);
    }
  }

  /**
   * The provider's sign-in URL for a new sign-in. Its state, nonce and PKCE verifier go to the
   * database (any instance may get the callback); `state` also goes to the browser in a cookie,
   * so a callback only completes in the browser that started it (no login CSRF).
   */
  async start(redirectUri: string, returnTo: string | undefined): Promise<{ url: string; state: string }> {
    if (returnTo !== undefined) checkLocalPath(returnTo);
    const config = await this.configuration();
    const now = this.options.now();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const verifier = oidc.randomPKCECodeVerifier();
    await this.repos.identities.deleteExpiredOidcLogins(now);
    await this.repos.identities.insertOidcLogin({
      state,
      nonce,
      code_verifier: verifier,
      redirect_uri: redirectUri,
      return_to: returnTo ?? null,
      created_at: now,
      expires_at: now + LOGIN_TTL_MS,
    });
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: this.options.config.scopes,
      response_type: 'code',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, state };
  }

  /**
   * The provider's answer: the state must be the one this browser started with, the code is
   * redeemed with the PKCE verifier, the ID token must carry the nonce. Then the account linked
   * to the (issuer, subject) signs in, or one is created as DFS_SIGNUP allows.
   */
  async finish(
    query: URLSearchParams,
    browserState: string | undefined,
    client: SessionClient,
  ): Promise<OidcSignin> {
    const state = query.get('state');
    // Taken (and so spent) whatever happens next: a sign-in is tried once.
    const login = browserState
      ? await this.repos.identities.takeOidcLogin(browserState, this.options.now())
      : undefined;
    if (!login || state !== browserState) {
      throw failed('this sign-in was not started here, has expired or was already used; start again');
    }
    const providerError = query.get('error');
    if (providerError) {
      throw failed(
        `the provider did not sign you in: ${query.get('error_description') ?? providerError}`.slice(0, 300),
      );
    }
    const config = await this.configuration();
    const callback = new URL(login.redirect_uri);
    callback.search = query.toString();
    let claims: Record<string, unknown>;
    try {
      const tokens = await oidc.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: login.code_verifier,
        expectedState: login.state,
        expectedNonce: login.nonce,
        idTokenExpected: true,
      });
      const idClaims = tokens.claims();
      if (!idClaims) throw failed('the provider sent no ID token');
      claims = { ...idClaims };
      // Many providers keep profile claims (name, email, groups) for the userinfo endpoint.
      if (config.serverMetadata().userinfo_endpoint) {
        const info = await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub);
        claims = { ...info, ...idClaims };
      }
    } catch (error) {
      if (error instanceof HttpError) throw error;
      if (isNetworkError(error)) throw unavailable(error);
      this.options.log.info({ err: error }, 'OpenID sign-in refused');
      throw failed(`the provider's answer was refused: ${(error as Error).message}`.slice(0, 300));
    }
    const issuer = String(claims.iss);
    const subject = String(claims.sub);
    const user = await this.accountFor(issuer, subject, claims);
    if ((user as UserRow & { disabled_at?: number | null }).disabled_at != null) {
      throw new HttpError('account_disabled', 'this account is disabled; ask an administrator');
    }
    const { groupsClaim } = this.options.config;
    if (groupsClaim) {
      await syncGroups(this.repos, 'oidc', user.id, groupNames(claims[groupsClaim]), this.options.now());
    }
    // The provider owns the second factor: its sign-in counts as both.
    const token = await this.auth.openSession(user.id, true, client, 'oidc', user.username);
    return { token, userId: user.id, returnTo: login.return_to ?? '/files' };
  }

  /** The linked account, or a new one when DFS_SIGNUP lets anyone in (the first account always). */
  private async accountFor(
    issuer: string,
    subject: string,
    claims: Record<string, unknown>,
  ): Promise<UserRow> {
    const now = this.options.now();
    const linked = await this.repos.identities.findUser('oidc', issuer, subject);
    if (linked) {
      await this.repos.identities.touch(linked.identity.id, now);
      return linked.user;
    }
    for (const username of usernameCandidates(claims)) {
      try {
        return await this.repos.transaction(async (tx) => {
          const first = !(await tx.users.any());
          if (!first && this.options.signup !== 'open') {
            throw new HttpError(
              'signup_closed',
              'there is no account for you on this server yet; an administrator can create one and link it',
            );
          }
          if (await tx.users.findByUsername(username)) throw new NameTaken();
          // No password: the account signs in through the provider (an admin may set one).
          const row: UserRow = { id: newId(), username, password_hash: '', is_admin: first, created_at: now };
          await tx.users.insert(row);
          await tx.identities.insert(identityRow(row.id, issuer, subject, now));
          return row;
        });
      } catch (error) {
        if (error instanceof NameTaken) continue;
        if (!isUniqueViolation(error)) throw error;
        // A concurrent first sign-in of the same person linked it already, or took the name.
        const raced = await this.repos.identities.findUser('oidc', issuer, subject);
        if (raced) return raced.user;
      }
    }
    throw failed('no free username could be made from the name the provider gave');
  }

  /** An administrator links an account to a subject at the configured provider. */
  async link(userId: string, subject: string): Promise<IdentityRow> {
    const user = await this.repos.users.findById(userId);
    if (!user) throw new HttpError('not_found', 'user not found');
    // The issuer exactly as the provider writes it in its tokens (discovery checks they match).
    const issuer = (await this.configuration()).serverMetadata().issuer;
    const row = identityRow(userId, issuer, subject, this.options.now());
    row.last_used_at = null;
    try {
      await this.repos.identities.insert(row);
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new HttpError('identity_linked', 'that identity is already linked to an account');
      }
      throw error;
    }
    return row;
  }
}

class NameTaken extends Error {}

/**
 * `returnTo` must stay on this site: the schema's `/` not followed by `/` or `\` is not enough,
 * since browsers drop tabs and newlines from a Location and read `\` as `/` (`/<tab>/evil.example`
 * is `//evil.example`), which would make the callback an open redirect.
 */
function checkLocalPath(returnTo: string): void {
  const base = 'http://dfs.invalid';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  const plain = !/[\u0000-\u001f\u007f\\]/.test(returnTo);
  if (!plain || !URL.canParse(returnTo, base) || new URL(returnTo, base).origin !== base) {
    throw new HttpError('bad_request', 'returnTo must be a path of this app, such as /files');
  }
}

function identityRow(userId: string, issuer: string, subject: string, now: number): IdentityRow {
  return {
    id: newId(),
    user_id: userId,
    provider: 'oidc',
    issuer,
    subject,
    created_at: now,
    last_used_at: now,
  };
}

/** A groups claim is a list of names (some providers send one name as a string). */
function groupNames(value: unknown): string[] {
  const list = Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
  return list.filter((name): name is string => typeof name === 'string');
}
