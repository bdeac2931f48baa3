import type { Knex } from 'knex';

export type MemberRole = 'viewer' | 'editor';

/** One user or one group given a role on a file or folder by its owner. */
export interface MemberRow {
  id: string;
  file_id: string;
  owner_id: string;
  user_id: string | null;
  group_id: string | null;
  role: MemberRole;
  created_at: number;
}

export type MemberWithNames = MemberRow & { username: string | null; group_name: string | null };

/** The members of shared entries, and what reaches a given user. */
export class MembersRepository {
  constructor(private readonly db: Knex) {}

  private named() {
    return this.db('file_members')
      .leftJoin('users', 'users.id', 'file_members.user_id')
      .leftJoin('groups', 'groups.id', 'file_members.group_id')
      .select('file_members.*', 'users.username as username', 'groups.name as group_name');
  }

  async listFor(fileId: string): Promise<MemberWithNames[]> {
    return this.named().where('file_members.file_id', fileId).orderBy('file_members.created_at');
  }

  async find(fileId: string, memberId: string): Promise<MemberWithNames | undefined> {
    return this.named().where({ 'file_members.file_id': fileId, 'file_members.id': memberId }).first();
  }

  async insert(row: MemberRow): Promise<void> {
    await this.db('file_members').insert(row);
  }

  async setRole(id: string, role: MemberRole): Promise<void> {
    await this.db('file_members').where({ id }).update({ role });
  }

  async delete(id: string): Promise<boolean> {
    return (await this.db('file_members').where({ id }).delete()) === 1;
  }

  /** Members naming `userId` directly or through a group, and not left by them. */
  private reachingQuery(userId: string) {
    return this.db('file_members')
      .where((w) =>
        w
          .where('file_members.user_id', userId)
          .orWhereIn(
            'file_members.group_id',
            this.db('group_members').where({ user_id: userId }).select('group_id'),
          ),
      )
      .whereNotIn(
        'file_members.id',
        this.db('file_members_left').where({ user_id: userId }).select('member_id'),
      );
  }

  /** Whether anything of `ownerId`'s is shared with the user (null: no owner, answered false). */
  async anyFrom(userId: string, ownerId: string | null): Promise<boolean> {
    const row = await this.reachingQuery(userId)
      .where('file_members.owner_id', ownerId ?? '')
      .first('file_members.id');
    return row !== undefined;
  }

  /** Which of `fileIds` are shared with the user, and how. */
  async reaching(userId: string, fileIds: string[]): Promise<MemberRow[]> {
    if (fileIds.length === 0) return [];
    return this.reachingQuery(userId).whereIn('file_members.file_id', fileIds).select('file_members.*');
  }

  /**
   * Everything shared with the user that is live, one row per entry (the strongest role when a
   * user is reached twice, directly and through a group), with the entry and its owner's name.
   */
  async sharedWith(
    userId: string,
  ): Promise<
    Array<{ member_id: string; file_id: string; role: MemberRole; owner: string; owner_id: string }>
  > {
    const rows = await this.reachingQuery(userId)
      .join('user_files', 'user_files.id', 'file_members.file_id')
      .join('users as owners', 'owners.id', 'file_members.owner_id')
      .where('user_files.status', 'active')
      .whereNot('file_members.owner_id', userId)
      .orderBy('file_members.created_at')
      .select(
        'file_members.id as member_id',
        'file_members.file_id',
        'file_members.role',
        'owners.username as owner',
        'file_members.owner_id',
      );
    const best = new Map<string, (typeof rows)[number]>();
    for (const row of rows) {
      const seen = best.get(row.file_id);
      if (!seen || (seen.role === 'viewer' && row.role === 'editor')) best.set(row.file_id, row);
    }
    return [...best.values()];
  }

  /** Usernames starting with `prefix` (the people a user may pick to share with), by name. */
  async usernamesStartingWith(prefix: string, limit: number): Promise<string[]> {
    const rows = await this.db('users')
      .whereRaw(...likePrefix('username', prefix))
      .orderBy('username')
      .limit(limit)
      .select('username');
    return rows.map((r: { username: string }) => r.username);
  }

  /** The members of one share that reach `userId` (directly or through groups), not left. */
  async reachingOn(userId: string, fileId: string): Promise<MemberRow[]> {
    return this.reachingQuery(userId).where('file_members.file_id', fileId).select('file_members.*');
  }

  /** Who each of `fileIds` is shared with, as a user or a group (Nextcloud's `oc:share-types`). */
  async kindsOn(
    fileIds: string[],
  ): Promise<Array<{ file_id: string; user_id: string | null; group_id: string | null }>> {
    if (fileIds.length === 0) return [];
    return this.db('file_members').whereIn('file_id', fileIds).select('file_id', 'user_id', 'group_id');
  }

  /** The recipient stops seeing a share (a group's share stays for the group's other members). */
  async leave(memberId: string, userId: string): Promise<void> {
    const left = await this.db('file_members_left').where({ member_id: memberId, user_id: userId }).first();
    if (!left) await this.db('file_members_left').insert({ member_id: memberId, user_id: userId });
  }
}

/**
 * A LIKE pattern matching what starts with `text` taken literally. `!` escapes, as SQLite has no
 * default escape character and MariaDB's backslash would need quoting differently in each.
 */
export function likePrefix(column: string, text: string): [string, string[]] {
  return [`${column} LIKE ? ESCAPE '!'`, [`${text.replace(/[!%_]/g, (c) => `!${c}`)}%`]];
}
