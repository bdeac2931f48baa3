import {
  AddGroupMemberBody,
  CreateGroupBody,
  ErrorBody,
  GroupList,
  GroupMember,
  GroupMemberList,
  GroupResponse,
} from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { AppInstance } from '../app.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const MemberParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
  username: Type.String({ minLength: 1, maxLength: 64 }),
});

/** Groups of users, for administrators (services/sharing/groups.ts). */
export async function groupRoutes(app: AppInstance): Promise<void> {
  const { groups, audit } = app.services;
  const admin = { access: 'admin' as const };

  app.get(
    '/api/admin/groups',
    { config: admin, schema: { tags: ['admin'], response: { 200: GroupList, '4xx': ErrorBody } } },
    async () => ({ items: await groups.list() }),
  );

  app.post(
    '/api/admin/groups',
    {
      config: admin,
      schema: { tags: ['admin'], body: CreateGroupBody, response: { 201: GroupResponse, '4xx': ErrorBody } },
    },
    async (request, reply) => {
      const group = await groups.create(request.body.name);
      await audit.record({
        action: 'group.created',
        target: { type: 'group', id: group.id },
        details: { name: group.name },
      });
      return reply.status(201).send({ group });
    },
  );

  app.delete(
    '/api/admin/groups/:id',
    {
      config: admin,
      schema: { tags: ['admin'], params: IdParams, response: { 204: Type.Null(), '4xx': ErrorBody } },
    },
    async (request, reply) => {
      await groups.delete(request.params.id);
      await audit.record({ action: 'group.deleted', target: { type: 'group', id: request.params.id } });
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/admin/groups/:id/members',
    {
      config: admin,
      schema: { tags: ['admin'], params: IdParams, response: { 200: GroupMemberList, '4xx': ErrorBody } },
    },
    async (request) => ({ items: await groups.members(request.params.id) }),
  );

  app.post(
    '/api/admin/groups/:id/members',
    {
      config: admin,
      schema: {
        tags: ['admin'],
        params: IdParams,
        body: AddGroupMemberBody,
        response: { 201: Type.Object({ member: GroupMember }), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const member = await groups.addMember(request.params.id, request.body.username);
      await audit.record({
        action: 'group.member_added',
        target: { type: 'group', id: request.params.id },
        details: { username: member.username },
      });
      return reply.status(201).send({ member });
    },
  );

  app.delete(
    '/api/admin/groups/:id/members/:username',
    {
      config: admin,
      schema: { tags: ['admin'], params: MemberParams, response: { 204: Type.Null(), '4xx': ErrorBody } },
    },
    async (request, reply) => {
      await groups.removeMember(request.params.id, request.params.username);
      await audit.record({
        action: 'group.member_removed',
        target: { type: 'group', id: request.params.id },
        details: { username: request.params.username },
      });
      return reply.status(204).send(null);
    },
  );
}
