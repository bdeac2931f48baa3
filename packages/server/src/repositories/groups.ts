import type { Knex } from 'knex';
import { likePrefix } from './members.ts';

/** Who put a group or a membership there: dfs's admins, the LDAP directory, or an OIDC claim. */
export type GroupSource = 'local' | 'ldap' | 'oidc';

export interface GroupRow {
  id: string;
  name: string;
  source: GroupSource;
  created_at: number;
}

export interface GroupMemberRow {
  group_id: string;
  user_id: string;
  source: GroupSource;
  created_at: number;
}

/** Groups of users and who is in them. */
export class GroupsRepository {
  constructor(private readonly db: Knex) {}

  async find(id: string): Promise<GroupRow | undefined> {
    return this.db<GroupRow>('groups').where({ id }).first();
  }

  async findByName(name: string): Promise<GroupRow | undefined> {
    return this.db<GroupRow>('groups').where({ name }).first();
  }

  /** Every group with its member count, by name. */
  async list(): Promise<Array<GroupRow & { members: number }>> {
    const rows = await this.db('groups')
      .leftJoin('group_members', 'group_members.group_id', 'groups.id')
      .groupBy('groups.id', 'groups.name', 'groups.source', 'groups.created_at')
      .orderBy('groups.name')
      .select('groups.*', this.db.raw('COUNT(group_members.user_id) as members'));
    return rows.map((r: GroupRow & { members: number | string }) => ({ ...r, members: Number(r.members) }));
  }

  /** Group names starting with `prefix`, by name. */
  async namesStartingWith(prefix: string, limit: number): Promise<string[]> {
    const rows = await this.db('groups')
      .whereRaw(...likePrefix('name', prefix))
      .orderBy('name')
      .limit(limit)
      .select('name');
    return rows.map((r: { name: string }) => r.name);
  }

  async insert(row: GroupRow): Promise<void> {
    await this.db('groups').insert(row);
  }

  async delete(id: string): Promise<boolean> {
    return (await this.db('groups').where({ id }).delete()) === 1;
  }

  async members(groupId: string): Promise<Array<{ id: string; username: string; source: GroupSource }>> {
    return this.db('group_members')
      .join('users', 'users.id', 'group_members.user_id')
      .where('group_members.group_id', groupId)
      .orderBy('users.username')
      .select('users.id', 'users.username', 'group_members.source');
  }

  /** Adds a membership; false when the user already was a member. */
  async addMember(row: GroupMemberRow): Promise<boolean> {
    const existing = await this.db('group_members')
      .where({ group_id: row.group_id, user_id: row.user_id })
      .first('user_id');
    if (existing) return false;
    await this.db('group_members').insert(row);
    return true;
  }

  async removeMember(groupId: string, userId: string): Promise<boolean> {
    return (await this.db('group_members').where({ group_id: groupId, user_id: userId }).delete()) === 1;
  }

  /** The groups a user is in. */
  async groupIdsOf(userId: string): Promise<string[]> {
    const rows = await this.db('group_members').where({ user_id: userId }).select('group_id');
    return rows.map((r: { group_id: string }) => r.group_id);
  }

  /**
   * Makes the user's memberships of one source exactly `groupIds` (a directory or an identity
   * provider says which groups a user is in at each sign-in); memberships of other sources stay.
   */
  async setMembershipsFrom(
    source: GroupSource,
    userId: string,
    groupIds: string[],
    now: number,
  ): Promise<void> {
    const current = await this.db('group_members').where({ user_id: userId, source }).select('group_id');
    const had = new Set(current.map((r: { group_id: string }) => r.group_id));
    const want = new Set(groupIds);
    const gone = [...had].filter((id) => !want.has(id));
    if (gone.length > 0)
      await this.db('group_members').where({ user_id: userId, source }).whereIn('group_id', gone).delete();
    for (const id of want)
      if (!had.has(id)) await this.addMember({ group_id: id, user_id: userId, source, created_at: now });
  }
}
