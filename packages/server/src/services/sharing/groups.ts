import type { Group, GroupMember } from '@dfs/shared';
import { isUniqueViolation } from '../../db/knex.ts';
import { HttpError, notFound } from '../../errors.ts';
import type { GroupRow } from '../../repositories/groups.ts';
import type { Repositories } from '../../repositories/index.ts';
import { newId } from '../ids.ts';

function toGroup(row: GroupRow, members: number): Group {
  return {
    id: row.id,
    name: row.name,
    source: row.source,
    members,
    createdAt: new Date(Number(row.created_at)).toISOString(),
  };
}

/**
 * Groups of users, managed by admins. A share with a group reaches whoever is in it at the time
 * of each request: adding or removing a member changes what they reach at once.
 */
export class GroupService {
  constructor(
    private readonly repos: Repositories,
    private readonly now: () => number,
  ) {}

  async list(): Promise<Group[]> {
    return (await this.repos.groups.list()).map((g) => toGroup(g, g.members));
  }

  async create(name: string): Promise<Group> {
    const trimmed = name.trim();
    if (trimmed === '' || trimmed !== name)
      throw new HttpError('bad_request', 'a group name must not be blank or start or end with spaces');
    const taken = () => new HttpError('group_exists', `a group named "${name}" exists already`);
    if (await this.repos.groups.findByName(name)) throw taken();
    const row: GroupRow = { id: newId(), name, source: 'local', created_at: this.now() };
    try {
      await this.repos.groups.insert(row);
    } catch (error) {
      if (isUniqueViolation(error)) throw taken();
      throw error;
    }
    return toGroup(row, 0);
  }

  /** Deletes the group; its shares go with it (whoever reached an entry only through it no longer does). */
  async delete(id: string): Promise<void> {
    if (!(await this.repos.groups.delete(id))) throw notFound('group not found');
  }

  async members(id: string): Promise<GroupMember[]> {
    await this.group(id);
    return this.repos.groups.members(id);
  }

  async addMember(id: string, username: string): Promise<GroupMember> {
    const group = await this.group(id);
    const user = await this.repos.users.findByUsername(username);
    if (!user) throw notFound(`there is no user named "${username}"`);
    const added = await this.repos.groups
      .addMember({ group_id: group.id, user_id: user.id, source: 'local', created_at: this.now() })
      .catch((error: unknown) => {
        if (isUniqueViolation(error)) return false;
        throw error;
      });
    if (!added) throw new HttpError('already_member', `"${user.username}" is in "${group.name}" already`);
    return { id: user.id, username: user.username, source: 'local' };
  }

  async removeMember(id: string, username: string): Promise<void> {
    const group = await this.group(id);
    const user = await this.repos.users.findByUsername(username);
    if (!user || !(await this.repos.groups.removeMember(group.id, user.id)))
      throw notFound(`"${username}" is not in "${group.name}"`);
  }

  private async group(id: string): Promise<GroupRow> {
    const group = await this.repos.groups.find(id);
    if (!group) throw notFound('group not found');
    return group;
  }
}
