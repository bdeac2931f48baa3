import { type Static, Type } from '@sinclair/typebox';
import { Id, WELL_FORMED_TEXT } from './common.ts';
import { FileKind } from './files.ts';

/** What a share with a user or a group gives: `viewer` reads, `editor` also changes what is inside. */
export const MemberRole = Type.Union([Type.Literal('viewer'), Type.Literal('editor')]);
export type MemberRole = Static<typeof MemberRole>;

/** How the signed-in user reaches an entry: as its owner, or through a share. */
export const AccessRole = Type.Union([Type.Literal('owner'), MemberRole]);
export type AccessRole = Static<typeof AccessRole>;

const Username = Type.String({ minLength: 1, maxLength: 64 });
export const GroupName = Type.String({ minLength: 1, maxLength: 100, pattern: WELL_FORMED_TEXT });

/** `POST /api/files/:id/members`: a user or a group (exactly one), and a role. */
export const AddMemberBody = Type.Union([
  Type.Object({ username: Username, role: MemberRole }, { additionalProperties: false }),
  Type.Object({ group: GroupName, role: MemberRole }, { additionalProperties: false }),
]);
export type AddMemberBody = Static<typeof AddMemberBody>;

export const PatchMemberBody = Type.Object({ role: MemberRole }, { additionalProperties: false });
export type PatchMemberBody = Static<typeof PatchMemberBody>;

export const FileMember = Type.Object(
  {
    id: Id,
    username: Type.Optional(Type.String()),
    group: Type.Optional(Type.String()),
    role: MemberRole,
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'FileMember' },
);
export type FileMember = Static<typeof FileMember>;

export const FileMemberResponse = Type.Object({ member: FileMember });
export type FileMemberResponse = Static<typeof FileMemberResponse>;
export const FileMemberList = Type.Object({ items: Type.Array(FileMember) });
export type FileMemberList = Static<typeof FileMemberList>;

export const MemberParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
  memberId: Type.String({ minLength: 1, maxLength: 64 }),
});

/** An entry shared with the signed-in user, as it appears at the top of their tree. */
export const SharedItem = Type.Object(
  {
    id: Id,
    /** Unique among the recipient's own top-level names (` (owner)` added when one is taken). */
    name: Type.String(),
    kind: FileKind,
    size: Type.Integer({ minimum: 0 }),
    role: MemberRole,
    owner: Type.Object({ username: Type.String() }),
  },
  { $id: 'SharedItem' },
);
export type SharedItem = Static<typeof SharedItem>;
export const SharedWithMe = Type.Object({ items: Type.Array(SharedItem) });
export type SharedWithMe = Static<typeof SharedWithMe>;

export const Group = Type.Object(
  {
    id: Id,
    name: Type.String(),
    /** Who manages it: dfs's admins (`local`), or a directory or identity provider. */
    source: Type.Union([Type.Literal('local'), Type.Literal('ldap'), Type.Literal('oidc')]),
    members: Type.Integer({ minimum: 0 }),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Group' },
);
export type Group = Static<typeof Group>;
export const GroupResponse = Type.Object({ group: Group });
export type GroupResponse = Static<typeof GroupResponse>;
export const GroupList = Type.Object({ items: Type.Array(Group) });
export type GroupList = Static<typeof GroupList>;
export const CreateGroupBody = Type.Object({ name: GroupName }, { additionalProperties: false });
export type CreateGroupBody = Static<typeof CreateGroupBody>;
export const AddGroupMemberBody = Type.Object({ username: Username }, { additionalProperties: false });
export type AddGroupMemberBody = Static<typeof AddGroupMemberBody>;
export const GroupMember = Type.Object({
  id: Id,
  username: Type.String(),
  source: Type.Union([Type.Literal('local'), Type.Literal('ldap'), Type.Literal('oidc')]),
});
export type GroupMember = Static<typeof GroupMember>;
export const GroupMemberList = Type.Object({ items: Type.Array(GroupMember) });
export type GroupMemberList = Static<typeof GroupMemberList>;

/** `GET /api/directory?q=`: the people and groups a user may share with, by name prefix. */
export const DirectoryQuery = Type.Object({
  q: Type.String({ minLength: 1, maxLength: 100 }),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })),
});
export type DirectoryQuery = Static<typeof DirectoryQuery>;
export const DirectoryList = Type.Object({
  users: Type.Array(Type.Object({ username: Type.String() })),
  groups: Type.Array(Type.Object({ name: Type.String() })),
});
export type DirectoryList = Static<typeof DirectoryList>;
