import {
  AdminCreateUserBody,
  AdminListQuery,
  AdminPatchUserBody,
  AdminResetPasswordBody,
  AdminUserList,
  AdminUserResponse,
  CreateInviteBody,
  CreateInviteResponse,
  DEFAULT_PAGE_SIZE,
  ErrorBody,
  InviteList,
} from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { AppInstance } from '../app.ts';
import { currentUser } from '../plugins/auth.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

/** Accounts and invites, for administrators only (the rules are AdminService's). */
export async function adminRoutes(app: AppInstance): Promise<void> {
  const { admin } = app.services;
  app.get(
    '/api/admin/users',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['admin'],
        querystring: AdminListQuery,
        response: { 200: AdminUserList, '4xx': ErrorBody },
      },
    },
    async (request) => admin.listUsers(request.query.limit ?? DEFAULT_PAGE_SIZE, request.query.offset ?? 0),
  );

  app.post(
    '/api/admin/users',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['admin'],
        body: AdminCreateUserBody,
        response: { 201: AdminUserResponse, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const { username, password, isAdmin } = request.body;
      return reply.status(201).send({ user: await admin.createUser(username, password, isAdmin ?? false) });
    },
  );

  app.patch(
    '/api/admin/users/:id',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['admin'],
        params: IdParams,
        body: AdminPatchUserBody,
        response: { 200: AdminUserResponse, '4xx': ErrorBody },
      },
    },
    async (request) => ({ user: await admin.setQuota(request.params.id, request.body.quotaBytes) }),
  );

  app.post(
    '/api/admin/users/:id/password',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['admin'],
        summary: "Set a user's password: every session of theirs ends, app passwords stay",
        params: IdParams,
        body: AdminResetPasswordBody,
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      await admin.resetPassword(request.params.id, request.body.newPassword, request.auth?.sessionId ?? null);
      return reply.status(204).send(null);
    },
  );

  app.delete(
    '/api/admin/users/:id/two-factor',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['admin'],
        summary:
          "Remove a user's two-factor sign-in (they lost their authenticator): the password alone signs in again",
        params: IdParams,
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      await admin.resetTwoFactor(request.params.id);
      // Weakens an account's sign-in: the log says who did it to whom.
      request.log.info(
        { userId: request.params.id, by: currentUser(request).id },
        'two-factor sign-in reset by an administrator',
      );
      return reply.status(204).send(null);
    },
  );

  for (const [action, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    app.post(
      `/api/admin/users/:id/${action}`,
      {
        config: { access: 'admin' },
        schema: {
          tags: ['admin'],
          summary: disabled
            ? 'Disable an account: it signs in nowhere, its sessions end, its app passwords stop working'
            : 'Enable a disabled account again (its app passwords work again; sessions were ended)',
          params: IdParams,
          response: { 200: AdminUserResponse, '4xx': ErrorBody },
        },
      },
      async (request) => {
        const by = currentUser(request).id;
        const user = await admin.setDisabled(request.params.id, disabled, by);
        request.log.info({ userId: request.params.id, by }, `account ${action}d by an administrator`);
        return { user };
      },
    );
  }

  app.post(
    '/api/admin/invites',
    {
      config: { access: 'admin' },
      // A bare POST (no body) asks for an invite with the default lifetime.
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        tags: ['admin'],
        body: CreateInviteBody,
        response: { 201: CreateInviteResponse, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const invite = await admin.createInvite(currentUser(request).id, request.body.expiresInHours);
      return reply.status(201).send({ invite });
    },
  );

  app.get(
    '/api/admin/invites',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['admin'],
        querystring: AdminListQuery,
        response: { 200: InviteList, '4xx': ErrorBody },
      },
    },
    async (request) => admin.listInvites(request.query.limit ?? DEFAULT_PAGE_SIZE, request.query.offset ?? 0),
  );

  app.delete(
    '/api/admin/invites/:id',
    {
      config: { access: 'admin' },
      schema: { tags: ['admin'], params: IdParams, response: { 204: Type.Null(), '4xx': ErrorBody } },
    },
    async (request, reply) => {
      await admin.deleteInvite(request.params.id);
      return reply.status(204).send(null);
    },
  );
}
