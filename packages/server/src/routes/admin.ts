import {
  AdminCreateUserBody,
  AdminListQuery,
  AdminPatchUserBody,
  type AdminUser,
  AdminUserList,
  AdminUserResponse,
  CreateInviteBody,
  CreateInviteResponse,
  DEFAULT_PAGE_SIZE,
  ErrorBody,
  type Invite,
  InviteList,
} from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { AppInstance } from '../app.ts';
import { notFound } from '../errors.ts';
import { currentUser } from '../plugins/auth.ts';
import type { InviteRow } from '../repositories/invites.ts';
import type { UsageRow, UserRow } from '../repositories/users.ts';
import { toUser } from '../services/auth.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

/** Invites last a week unless the admin asks otherwise. */
const DEFAULT_INVITE_HOURS = 168;

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

function toInvite(row: InviteRow): Invite {
  return {
    id: row.id,
    createdAt: iso(row.created_at) as string,
    expiresAt: iso(row.expires_at) as string,
    usedAt: iso(row.used_at),
  };
}

/** Accounts and invites, for administrators only. */
export async function adminRoutes(app: AppInstance): Promise<void> {
  const { auth, limits, repos, now } = app.services;

  const toAdminUser = (row: UserRow, usage: UsageRow | undefined): AdminUser => ({
    ...toUser(row),
    quotaOverride: row.quota_bytes === null || row.quota_bytes === undefined ? null : Number(row.quota_bytes),
    usage: { usedBytes: usage?.bytes ?? 0, quotaBytes: limits.quotaOf(row) },
    entries: usage?.entries ?? 0,
  });

  async function adminUser(id: string): Promise<AdminUser> {
    const row = await repos.users.findById(id);
    if (!row) throw notFound('user not found');
    return toAdminUser(row, (await repos.users.usage([id], now())).get(id));
  }

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
    async (request) => {
      const { items, total } = await repos.users.list(
        request.query.limit ?? DEFAULT_PAGE_SIZE,
        request.query.offset ?? 0,
      );
      const usage = await repos.users.usage(
        items.map((row) => row.id),
        now(),
      );
      return { items: items.map((row) => toAdminUser(row, usage.get(row.id))), total };
    },
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
      const user = await auth.createUser(username, password, isAdmin ?? false);
      return reply.status(201).send({ user: await adminUser(user.id) });
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
    async (request) => {
      if (!(await repos.users.setQuota(request.params.id, request.body.quotaBytes))) {
        throw notFound('user not found');
      }
      return { user: await adminUser(request.params.id) };
    },
  );

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
      const hours = request.body.expiresInHours ?? DEFAULT_INVITE_HOURS;
      const { code, row } = await auth.createInvite(currentUser(request).id, Math.round(hours * 3_600_000));
      return reply.status(201).send({ invite: { ...toInvite(row), code } });
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
    async (request) => {
      const { items, total } = await repos.invites.list(
        request.query.limit ?? DEFAULT_PAGE_SIZE,
        request.query.offset ?? 0,
      );
      return { items: items.map(toInvite), total };
    },
  );

  app.delete(
    '/api/admin/invites/:id',
    {
      config: { access: 'admin' },
      schema: { tags: ['admin'], params: IdParams, response: { 204: Type.Null(), '4xx': ErrorBody } },
    },
    async (request, reply) => {
      if (!(await repos.invites.delete(request.params.id))) throw notFound('invite not found');
      return reply.status(204).send(null);
    },
  );
}
