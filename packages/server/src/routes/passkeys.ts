import {
  DeletePasskeyBody,
  ErrorBody,
  PasskeyAssertion,
  PasskeyCeremony,
  PasskeyList,
  PasskeyRegistrationOptionsBody,
  PasskeyResponse,
  RegisterPasskeyBody,
  RenamePasskeyBody,
  SigninResponse,
} from '@dfs/shared';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';
import {
  currentUser,
  isCrossOrigin,
  SESSION_COOKIE,
  secondFactorSession,
  sessionClient,
  sessionOnly,
} from '../plugins/auth.ts';
import type { UserRow } from '../repositories/users.ts';
import { toUser } from '../services/auth.ts';

/** How recent a sign-in must be to stand in for the password of an account that has none. */
const RECENT_SIGNIN_MS = 10 * 60_000;

const PasskeyParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

/**
 * Passkeys: register, list, rename and remove them from a signed-in session; sign in with one
 * without a password. The second factor after a password goes through `POST /api/auth/signin`
 * (`passkey` in its body), see routes/auth.ts.
 */
export async function passkeyRoutes(app: AppInstance): Promise<void> {
  const { auth, passkeys, repos } = app.services;

  /** The relying party of this request: DFS_WEBAUTHN_* or the host and origin the browser used. */
  const rp = (request: FastifyRequest) =>
    passkeys.relyingParty({ hostname: request.hostname, origin: `${request.protocol}://${request.host}` });

  const account = async (userId: string): Promise<UserRow> => {
    const row = await repos.users.findById(userId);
    if (!row) throw new HttpError('unauthorized', 'sign in first');
    return row;
  };

  /**
   * The account password again before adding or removing a way in. An account made by single
   * sign-on has no password (an empty hash): there, a sign-in of the last few minutes stands in
   * for it, or such a user could never have a passkey. Any older session would not do: a stolen
   * one could add a passkey of its own and sign in with it long after it is revoked.
   */
  const reconfirm = async (request: FastifyRequest, password: string | undefined): Promise<UserRow> => {
    const userId = currentUser(request).id;
    const row = await account(userId);
    if (row.password_hash === '') {
      const now = app.services.now();
      const sessionId = request.auth?.sessionId;
      const session = (await repos.sessions.listLiveByUser(userId, now)).find((s) => s.id === sessionId);
      if (!session || now - Number(session.created_at) > RECENT_SIGNIN_MS) {
        throw new HttpError(
          'second_factor_required',
          'this account has no password: sign out and sign in again through your provider, then add or remove the passkey within 10 minutes',
        );
      }
      return row;
    }
    if (password === undefined) throw new HttpError('wrong_password', 'enter your account password');
    await auth.confirmPassword(userId, password);
    return row;
  };

  // The password and every signed challenge are worth guessing or replaying: attempts are limited
  // per account (per address before anyone is signed in), as at sign-in.
  const limited = (what: string) => ({
    rateLimit: {
      max: app.config.signinRateLimit,
      timeWindow: 60_000,
      keyGenerator: (request: FastifyRequest) => `${what}:${request.auth?.user.id ?? request.ip}`,
      hook: 'preHandler' as const,
    },
  });

  app.post(
    '/api/auth/passkeys/registration-options',
    {
      schema: {
        tags: ['auth'],
        summary:
          'Begin registering a passkey (the account password again): options for navigator.credentials.create()',
        body: PasskeyRegistrationOptionsBody,
        response: { 200: PasskeyCeremony, '4xx': ErrorBody },
      },
      config: limited('passkey-register'),
    },
    async (request) => {
      secondFactorSession(request, 'passkeys are registered');
      // Checked where the directory's passwords are too (LDAP).
      return passkeys.registrationOptions(await reconfirm(request, request.body.password), rp(request));
    },
  );

  app.post(
    '/api/auth/passkeys',
    {
      schema: {
        tags: ['auth'],
        summary: "Finish registering a passkey with the browser's answer",
        body: RegisterPasskeyBody,
        response: { 201: PasskeyResponse, '4xx': ErrorBody },
      },
      config: limited('passkey-register'),
    },
    async (request, reply) => {
      const user = secondFactorSession(request, 'passkeys are registered');
      const { challengeId, response, name } = request.body;
      const passkey = await passkeys.register(
        await account(user.id),
        request.auth?.sessionId ?? null,
        challengeId,
        response as RegistrationResponseJSON,
        name,
        rp(request),
      );
      await app.services.audit.record({
        action: 'passkey.added',
        target: { type: 'passkey', id: passkey.id },
        details: { name: passkey.name },
      });
      return reply.status(201).send({ passkey });
    },
  );

  app.get(
    '/api/auth/passkeys',
    {
      schema: {
        tags: ['auth'],
        summary: 'Your passkeys: name, when registered, when last used',
        response: { 200: PasskeyList, '4xx': ErrorBody },
      },
    },
    async (request) => ({
      items: await passkeys.list(sessionOnly(request, 'passkeys are managed').id),
    }),
  );

  app.patch(
    '/api/auth/passkeys/:id',
    {
      schema: {
        tags: ['auth'],
        summary: 'Rename a passkey',
        params: PasskeyParams,
        body: RenamePasskeyBody,
        response: { 200: PasskeyResponse, '4xx': ErrorBody },
      },
    },
    async (request) => {
      const user = sessionOnly(request, 'passkeys are managed');
      return { passkey: await passkeys.rename(user.id, request.params.id, request.body.name) };
    },
  );

  app.delete(
    '/api/auth/passkeys/:id',
    {
      schema: {
        tags: ['auth'],
        summary: 'Remove a passkey (the account password again)',
        params: PasskeyParams,
        body: DeletePasskeyBody,
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
      config: limited('passkey-remove'),
    },
    async (request, reply) => {
      const user = secondFactorSession(request, 'passkeys are removed');
      await reconfirm(request, request.body.password);
      await passkeys.remove(user.id, request.params.id);
      await app.services.audit.record({
        action: 'passkey.removed',
        target: { type: 'passkey', id: request.params.id },
      });
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/api/auth/passkeys/signin-options',
    {
      schema: {
        tags: ['auth'],
        summary: 'Begin a password-less sign-in: options for navigator.credentials.get()',
        response: { 200: PasskeyCeremony, '4xx': ErrorBody },
      },
      // Each call stores a challenge: an address may only ask so often.
      config: { access: 'public', ...limited('passkey-options') },
    },
    async (request) => passkeys.signinOptions(rp(request)),
  );

  app.post(
    '/api/auth/passkeys/signin',
    {
      schema: {
        tags: ['auth'],
        summary: 'Sign in with a passkey (no password): a session that counts as two factors',
        body: PasskeyAssertion,
        response: { 200: SigninResponse, '4xx': ErrorBody },
      },
      config: { access: 'public', ...limited('passkey-signin') },
    },
    async (request, reply) => {
      const { challengeId, response } = request.body;
      const row = await passkeys.signin(challengeId, response as AuthenticationResponseJSON, rp(request));
      if (row.disabled_at !== null && row.disabled_at !== undefined) {
        throw new HttpError('account_disabled', 'this account is disabled; ask an administrator');
      }
      const token = await auth.openSession(row.id, true, sessionClient(request), 'passkey', row.username);
      // As a password sign-in: the app's own pages get the cookie, other origins use the token.
      if (!isCrossOrigin(request, app.config.publicUrl))
        reply.setCookie(SESSION_COOKIE, token, {
          httpOnly: true,
          sameSite: 'lax',
          secure: 'auto',
          path: '/',
          maxAge: Math.floor(app.config.sessionTtlMs / 1000),
        });
      return { user: toUser(row), token };
    },
  );
}
