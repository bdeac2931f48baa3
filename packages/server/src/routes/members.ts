import {
  AddMemberBody,
  DirectoryList,
  DirectoryQuery,
  ErrorBody,
  type FileMember,
  FileMemberList,
  FileMemberResponse,
  MemberParams,
  PatchMemberBody,
  SharedWithMe,
} from '@dfs/shared';
import { Type } from '@sinclair/typebox';
import type { AppInstance } from '../app.ts';
import { currentUser } from '../plugins/auth.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const FileIdParams = Type.Object({ fileId: Type.String({ minLength: 1, maxLength: 64 }) });

/** Whom a share now reaches, as the audit log keeps it. */
const memberDetails = (member: FileMember) => ({
  memberId: member.id,
  ...(member.username !== undefined ? { username: member.username } : {}),
  ...(member.group !== undefined ? { group: member.group } : {}),
  role: member.role,
});

/** Shares with users and groups: the owner's side, the recipient's, and the name look-up (services/sharing). */
export async function memberRoutes(app: AppInstance): Promise<void> {
  const { members, audit } = app.services;

  app.get(
    '/api/files/:id/members',
    {
      schema: {
        tags: ['sharing'],
        summary: 'Who the item is shared with (owner only)',
        params: IdParams,
        response: { 200: FileMemberList, '4xx': ErrorBody },
      },
    },
    async (request) => ({ items: await members.list(currentUser(request).id, request.params.id) }),
  );

  app.post(
    '/api/files/:id/members',
    {
      schema: {
        tags: ['sharing'],
        summary: 'Share the item with a user or a group, as viewer or editor (owner only)',
        params: IdParams,
        body: AddMemberBody,
        response: { 201: FileMemberResponse, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const member = await members.add(currentUser(request).id, request.params.id, request.body);
      await audit.record({
        action: 'share.member_added',
        target: { type: 'file', id: request.params.id },
        details: memberDetails(member),
      });
      return reply.status(201).send({ member });
    },
  );

  app.patch(
    '/api/files/:id/members/:memberId',
    {
      schema: {
        tags: ['sharing'],
        summary: "Change a member's role (owner only)",
        params: MemberParams,
        body: PatchMemberBody,
        response: { 200: FileMemberResponse, '4xx': ErrorBody },
      },
    },
    async (request) => {
      const member = await members.setRole(
        currentUser(request).id,
        request.params.id,
        request.params.memberId,
        request.body.role,
      );
      await audit.record({
        action: 'share.member_changed',
        target: { type: 'file', id: request.params.id },
        details: memberDetails(member),
      });
      return { member };
    },
  );

  app.delete(
    '/api/files/:id/members/:memberId',
    {
      schema: {
        tags: ['sharing'],
        summary: 'Stop sharing the item with a user or a group (owner only)',
        params: MemberParams,
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      await members.remove(currentUser(request).id, request.params.id, request.params.memberId);
      await audit.record({
        action: 'share.member_removed',
        target: { type: 'file', id: request.params.id },
        details: { memberId: request.params.memberId },
      });
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/shared-with-me',
    {
      schema: {
        tags: ['sharing'],
        summary: 'What other users share with you (directly or through a group)',
        response: { 200: SharedWithMe, '4xx': ErrorBody },
      },
    },
    async (request) => ({ items: await members.sharedWith(currentUser(request).id) }),
  );

  app.delete(
    '/api/shared-with-me/:fileId',
    {
      schema: {
        tags: ['sharing'],
        summary: 'Leave a share: it no longer appears in your files',
        params: FileIdParams,
        response: { 204: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      await members.leave(currentUser(request).id, request.params.fileId);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/directory',
    {
      schema: {
        tags: ['sharing'],
        summary: 'Usernames and group names starting with q: whom you can share with',
        querystring: DirectoryQuery,
        response: { 200: DirectoryList, '4xx': ErrorBody },
      },
    },
    async (request) => members.directory(currentUser(request).id, request.query.q, request.query.limit),
  );
}
