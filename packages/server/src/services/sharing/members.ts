import type { AddMemberBody, DirectoryList, FileMember, MemberRole, SharedItem } from '@dfs/shared';
import { isUniqueViolation } from '../../db/knex.ts';
import { HttpError, notFound } from '../../errors.ts';
import type { Repositories } from '../../repositories/index.ts';
import type { MemberWithNames } from '../../repositories/members.ts';
import { newId } from '../ids.ts';
import type { AccessService } from './access.ts';

function toMember(row: MemberWithNames): FileMember {
  return {
    id: row.id,
    ...(row.username ? { username: row.username } : {}),
    ...(row.group_name ? { group: row.group_name } : {}),
    role: row.role,
    createdAt: new Date(Number(row.created_at)).toISOString(),
  };
}

/**
 * Who an owner shares an entry with (users and groups, each as viewer or editor), what is shared
 * with a user, and leaving a share. Changes take effect on the next request: access is decided
 * from these rows every time (services/sharing/access.ts), nothing is cached.
 */
export class MemberService {
  constructor(
    private readonly repos: Repositories,
    private readonly access: AccessService,
    private readonly now: () => number,
  ) {}

  /** The entry, when `userId` owns it and it is live; 404/403 as AccessService answers otherwise. */
  private async owned(userId: string, fileId: string): Promise<void> {
    await this.access.require(userId, fileId, 'owner');
    if (!(await this.repos.files.find(userId, fileId, 'active')))
      throw new HttpError('bad_request', 'a trashed item cannot be shared: restore it first');
  }

  async list(userId: string, fileId: string): Promise<FileMember[]> {
    await this.access.require(userId, fileId, 'owner');
    return (await this.repos.members.listFor(fileId)).map(toMember);
  }

  async add(userId: string, fileId: string, body: AddMemberBody): Promise<FileMember> {
    await this.owned(userId, fileId);
    const row = {
      id: newId(),
      file_id: fileId,
      owner_id: userId,
      user_id: null as string | null,
      group_id: null as string | null,
      role: body.role,
      created_at: this.now(),
    };
    let who: string;
    if ('username' in body) {
      const user = await this.repos.users.findByUsername(body.username);
      if (!user) throw notFound(`there is no user named "${body.username}"`);
      if (user.id === userId)
        throw new HttpError('bad_request', 'you own this item: share it with someone else');
      row.user_id = user.id;
      who = `"${user.username}"`;
    } else {
      const group = await this.repos.groups.findByName(body.group);
      if (!group) throw notFound(`there is no group named "${body.group}"`);
      row.group_id = group.id;
      who = `the group "${group.name}"`;
    }
    const already = () =>
      new HttpError('already_member', `this item is already shared with ${who}: change the role instead`);
    const existing = await this.repos.members.listFor(fileId);
    if (existing.some((m) => (row.user_id ? m.user_id === row.user_id : m.group_id === row.group_id)))
      throw already();
    try {
      await this.repos.members.insert(row);
    } catch (error) {
      // Added by another request meanwhile: the unique keys on (file, user) and (file, group).
      if (isUniqueViolation(error)) throw already();
      throw error;
    }
    const added = await this.repos.members.find(fileId, row.id);
    return toMember(added!);
  }

  async setRole(userId: string, fileId: string, memberId: string, role: MemberRole): Promise<FileMember> {
    await this.owned(userId, fileId);
    const member = await this.repos.members.find(fileId, memberId);
    if (!member) throw notFound('no such member of this item');
    await this.repos.members.setRole(memberId, role);
    return toMember({ ...member, role });
  }

  async remove(userId: string, fileId: string, memberId: string): Promise<void> {
    await this.access.require(userId, fileId, 'owner');
    const member = await this.repos.members.find(fileId, memberId);
    if (!member || !(await this.repos.members.delete(memberId)))
      throw notFound('no such member of this item');
  }

  /** What is shared with the user, as it appears at the top of their tree. */
  async sharedWith(userId: string): Promise<SharedItem[]> {
    const mounts = await this.access.mounts(userId);
    const sizes = new Map(
      (await this.repos.files.liveByIdsAnyOwner(mounts.map((m) => m.fileId))).map((e) => [
        e.id,
        Number(e.size),
      ]),
    );
    return mounts.map((m) => ({
      id: m.fileId,
      name: m.name,
      kind: m.kind,
      size: sizes.get(m.fileId) ?? 0,
      role: m.role,
      owner: { username: m.owner },
    }));
  }

  /**
   * The recipient stops seeing a share: a share with them alone is removed (the owner sees them
   * gone); a group's share stays for the group's other members.
   */
  async leave(userId: string, fileId: string): Promise<void> {
    const members = await this.repos.members.reachingOn(userId, fileId);
    if (members.length === 0 || members.some((m) => m.owner_id === userId))
      throw notFound('not shared with you');
    for (const m of members) {
      if (m.user_id === userId) await this.repos.members.delete(m.id);
      else await this.repos.members.leave(m.id, userId);
    }
  }

  /**
   * The people and groups whose names start with `q`, for picking whom to share with. Every
   * signed-in user may look names up (sharing needs them); nothing else about them is shown.
   */
  async directory(userId: string, q: string, limit = 10): Promise<DirectoryList> {
    const self = await this.repos.users.findById(userId);
    const users = await this.repos.members.usernamesStartingWith(q, limit + 1);
    const groups = await this.repos.groups.namesStartingWith(q, limit);
    return {
      users: users
        .filter((u) => u !== self?.username)
        .slice(0, limit)
        .map((username) => ({ username })),
      groups: groups.map((name) => ({ name })),
    };
  }
}
