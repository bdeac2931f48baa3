import {
  AppPasswordList,
  ChangePasswordBody,
  CreateAppPasswordBody,
  CreatedAppPassword,
  ErrorBody,
  SigninBody,
  SigninResponse,
  SignupBody,
  TotpCodeBody,
  TotpSetup,
  TotpSetupBody,
  TotpStatus,
  UserResponse,
} from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import {
  currentUser,
  isCrossOrigin,
  SESSION_COOKIE,
  secondFactorSession,
  sessionClient,
  sessionOnly as sessionOnlyUser,
} from '../plugins/auth.ts';

export async function authRoutes(app: AppInstance): Promise<void> {
  const { auth, limits, appPasswords, twoFactor, audit } = app.services;

  app.post(
    '/api/auth/signup',
    {
      schema: { tags: ['auth'], body: SignupBody, response: { 201: UserResponse, '4xx': ErrorBody } },
      // Accounts cost storage and rows: an address may only make so many, refused before any work.
      config: {
        access: 'public',
        rateLimit: {
          max: app.config.signupRateLimit,
          timeWindow: 3_600_000,
          keyGenerator: (request) => `signup:${request.ip}`,
        },
      },
    },
    async (request, reply) => {
      const { username, password, inviteCode } = request.body;
      const user = await auth.signup(username, password, inviteCode);
      return reply.status(201).send({ user });
    },
  );

  app.post(
    '/api/auth/signin',
    {
      schema: { tags: ['auth'], body: SigninBody, response: { 200: SigninResponse, '4xx': ErrorBody } },
      config: {
        access: 'public',
        rateLimit: {
          max: app.config.signinRateLimit,
          timeWindow: 60_000,
          // Attempts with a code count per account from any address: six digits are guessed by
          // spreading tries over many addresses otherwise.
          keyGenerator: (request) => {
            const body = request.body as { username?: unknown; code?: unknown } | undefined;
            const username = String(body?.username ?? '').toLowerCase();
            return body?.code === undefined ? `${request.ip}:${username}` : `code:${username}`;
          },
          hook: 'preHandler',
        },
      },
    },
    async (request, reply) => {
      const { username, password, code, passkey } = request.body;
      const { user, token } = await auth.signin(username, password, code, sessionClient(request), {
        rp: () =>
          app.services.passkeys.relyingParty({
            hostname: request.hostname,
            origin: `${request.protocol}://${request.host}`,
          }),
        assertion: passkey,
      });
      // A cross-origin client (CORS) uses the token; only the app's own pages get the cookie.
      if (!isCrossOrigin(request, app.config.publicUrl))
        reply.setCookie(SESSION_COOKIE, token, {
          httpOnly: true,
          sameSite: 'lax',
          secure: 'auto',
          path: '/',
          maxAge: Math.floor(app.config.sessionTtlMs / 1000),
        });
      return { user, token };
    },
  );

  app.post(
    '/api/auth/signout',
    { schema: { tags: ['auth'], response: { 204: Type.Null(), '4xx': ErrorBody } } },
    async (request, reply) => {
      if (request.auth) await auth.signout(request.auth.sessionId);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/auth/me',
    {
      schema: { tags: ['auth'], response: { 200: UserResponse, '4xx': ErrorBody } },
    },
    async (request) => {
      const user = currentUser(request);
      return { user, usage: await limits.usage(user.id) };
    },
  );

  const sessionOnly = (request: FastifyRequest) =>
    sessionOnlyUser(request, 'app passwords and the account password are managed');

  app.post(
    '/api/auth/password',
    {
      schema: {
        tags: ['auth'],
        summary: 'Change your password; your other sessions are signed out, app passwords stay',
        body: ChangePasswordBody,
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
      // The current password is a secret worth guessing for someone holding a stolen session.
      config: {
        rateLimit: {
          max: app.config.signinRateLimit,
          timeWindow: 60_000,
          keyGenerator: (request) => `password:${request.auth?.user.id ?? request.ip}`,
          hook: 'preHandler',
        },
      },
    },
    async (request, reply) => {
      const user = sessionOnly(request);
      const { currentPassword, newPassword } = request.body;
      await auth.changePassword(user.id, request.auth?.sessionId ?? null, currentPassword, newPassword);
      await audit.record({ action: 'auth.password_changed', target: { type: 'user', id: user.id } });
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/api/auth/app-passwords',
    {
      schema: {
        tags: ['auth'],
        summary: 'Create an app password; its secret is in this answer only',
        body: CreateAppPasswordBody,
        response: { 201: CreatedAppPassword, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const user = secondFactorSession(request, 'app passwords are created');
      const { name, scope } = request.body;
      const created = await appPasswords.create(user.id, name, scope);
      await audit.record({
        action: 'app_password.created',
        target: { type: 'app_password', id: created.appPassword.id },
        details: { name: created.appPassword.name, scope: created.appPassword.scope },
      });
      return reply.status(201).send(created);
    },
  );

  app.get(
    '/api/auth/app-passwords',
    { schema: { tags: ['auth'], response: { 200: AppPasswordList, '4xx': ErrorBody } } },
    async (request) => ({ items: await appPasswords.list(sessionOnly(request).id) }),
  );

  app.delete(
    '/api/auth/app-passwords/:id',
    {
      schema: {
        tags: ['auth'],
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      await appPasswords.revoke(sessionOnly(request).id, request.params.id);
      await audit.record({
        action: 'app_password.revoked',
        target: { type: 'app_password', id: request.params.id },
      });
      return reply.status(204).send(null);
    },
  );

  const totpSession = (request: FastifyRequest) => sessionOnlyUser(request, 'two-factor sign-in is managed');
  // Turning TOTP on marks the asking session as past the second factor: a session from before the
  // account's passkey (left open, or stolen with the password) would otherwise get around it.
  const totpSetupSession = (request: FastifyRequest) =>
    secondFactorSession(request, 'two-factor sign-in is set up');
  // A code is six digits: attempts are limited per account as at sign-in.
  const codeRateLimit = {
    rateLimit: {
      max: app.config.signinRateLimit,
      timeWindow: 60_000,
      keyGenerator: (request: FastifyRequest) => `totp:${request.auth?.user.id ?? request.ip}`,
      hook: 'preHandler' as const,
    },
  };

  app.get(
    '/api/auth/totp',
    {
      schema: {
        tags: ['auth'],
        summary: 'Whether two-factor sign-in (TOTP) is on; never the secret',
        response: { 200: TotpStatus, '4xx': ErrorBody },
      },
    },
    async (request) => {
      const user = totpSession(request);
      return twoFactor.status(user.id, request.auth?.secondFactorMissing === true);
    },
  );

  app.post(
    '/api/auth/totp',
    {
      schema: {
        tags: ['auth'],
        summary:
          'Set up two-factor sign-in (the account password again): a new secret and ten recovery codes, in this answer only; not active until confirmed',
        body: TotpSetupBody,
        response: { 201: TotpSetup, '4xx': ErrorBody },
      },
      // The password is worth guessing for someone holding a stolen session (its own count, so
      // setting up does not use up the tries of the confirmation that follows).
      config: {
        rateLimit: {
          ...codeRateLimit.rateLimit,
          keyGenerator: (request: FastifyRequest) => `totp-setup:${request.auth?.user.id ?? request.ip}`,
        },
      },
    },
    async (request, reply) => {
      const user = totpSetupSession(request);
      await auth.confirmPassword(user.id, request.body.password);
      return reply.status(201).send(await twoFactor.setup(user.id, user.username));
    },
  );

  app.post(
    '/api/auth/totp/confirm',
    {
      schema: {
        tags: ['auth'],
        summary: 'Turn two-factor sign-in on with a current code from the new secret',
        body: TotpCodeBody,
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
      config: codeRateLimit,
    },
    async (request, reply) => {
      const user = totpSetupSession(request);
      await twoFactor.confirm(user.id, request.body.code, request.auth?.sessionId ?? null);
      await audit.record({ action: 'totp.enabled', target: { type: 'user', id: user.id } });
      return reply.status(204).send(null);
    },
  );

  app.delete(
    '/api/auth/totp',
    {
      schema: {
        tags: ['auth'],
        summary: 'Turn two-factor sign-in off, with a current code or a recovery code',
        body: TotpCodeBody,
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
      config: codeRateLimit,
    },
    async (request, reply) => {
      const user = totpSession(request);
      await twoFactor.disable(user.id, request.body.code);
      await audit.record({ action: 'totp.disabled', target: { type: 'user', id: user.id } });
      return reply.status(204).send(null);
    },
  );
}
