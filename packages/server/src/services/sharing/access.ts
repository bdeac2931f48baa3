import { HttpError, notFound } from '../../errors.ts';
import type { Repositories } from '../../repositories/index.ts';
import type { MemberRole } from '../../repositories/members.ts';
import { MAX_FOLDER_DEPTH } from '../files.ts';

/**
 * A share as it appears in the recipient's own tree: at the top, under the shared entry's name
 * (followed by ` (owner)` when the recipient has an entry of that name there already, so WebDAV,
 * the Nextcloud clients and the web app all see one stable, unique name).
 */
export interface Mount {
  memberId: string;
  fileId: string;
  name: string;
  kind: 'file' | 'folder';
  ownerId: string;
  owner: string;
  role: MemberRole;
}

/** What a user may do with an entry: everything (its owner), or what a share gives them. */
export type AccessRole = 'owner' | MemberRole;

/**
 * How a user reaches an entry. Every file operation then runs in the owner's tree (`ownerId` is
 * the user id the file services take), so an editor's upload counts against the owner's quota
 * and lands in the owner's history under the editor's name.
 */
export interface Access {
  ownerId: string;
  role: AccessRole;
  /**
   * Whether the user may change the entry itself (rename, move, trash): its owner, or an editor
   * of a folder above it. The shared entry itself stays the owner's to rename or trash.
   */
  canChangeItself: boolean;
  /** The topmost shared entry on the way to this one (null for the owner). */
  shareRootId: string | null;
}

export type Need = 'read' | 'write' | 'owner';

const RANK: Record<AccessRole, number> = { viewer: 1, editor: 2, owner: 3 };

/**
 * Decides who reaches what: the one place that answers "may this user do this to that entry".
 * Not shared or revoked answers 404 (as if missing, so ids do not leak); shared but beyond the
 * role answers 403.
 */
export class AccessService {
  constructor(private readonly repos: Repositories) {}

  /** How `userId` reaches entry `id` (live or trashed for its owner; live only through a share). */
  async of(userId: string, id: string, reads = this.repos): Promise<Access> {
    const entry = await reads.files.ownerOf(id);
    if (entry?.user_id === userId)
      return { ownerId: userId, role: 'owner', canChangeItself: true, shareRootId: null };
    // Someone the owner shares nothing with is answered after the same two queries whether the
    // id exists or not (no timing tells them apart), without walking up the owner's tree.
    const sharedBy = await reads.members.anyFrom(userId, entry?.user_id ?? null);
    if (!entry || !sharedBy || entry.status !== 'active') throw notFound('file not found');
    const chain = await reads.files.lineage(entry.user_id, id, MAX_FOLDER_DEPTH);
    // A gap means a folder above is gone: nothing reaches the entry through it.
    if (chain.length === 0 || chain[0]!.id === '') throw notFound('file not found');
    const members = await reads.members.reaching(
      userId,
      chain.map((e) => e.id),
    );
    if (members.length === 0) throw notFound('file not found');
    const depth = new Map(chain.map((e, i) => [e.id, i]));
    let role: MemberRole = 'viewer';
    let canChangeItself = false;
    let top = chain.length;
    for (const m of members) {
      if (m.role === 'editor') role = 'editor';
      const at = depth.get(m.file_id) ?? chain.length;
      if (m.role === 'editor' && m.file_id !== id) canChangeItself = true;
      top = Math.min(top, at);
    }
    return { ownerId: entry.user_id, role, canChangeItself, shareRootId: chain[top]?.id ?? id };
  }

  /** `of`, refused with 403 when the role does not allow `need`. */
  async require(userId: string, id: string, need: Need, reads = this.repos): Promise<Access> {
    const access = await this.of(userId, id, reads);
    const wanted = need === 'read' ? 'viewer' : need === 'write' ? 'editor' : 'owner';
    if (RANK[access.role] < RANK[wanted]) throw forbidden(need);
    return access;
  }

  /** For a rename, move or trash of the entry itself: an editor inside the share, or the owner. */
  async requireChange(userId: string, id: string): Promise<Access> {
    const access = await this.require(userId, id, 'write');
    if (!access.canChangeItself)
      throw new HttpError(
        'forbidden',
        'a shared item itself can only be renamed, moved or deleted by its owner',
      );
    return access;
  }

  /** What is shared with the user, as it appears at the top of their tree. */
  async mounts(userId: string, reads = this.repos): Promise<Mount[]> {
    const shared = await reads.members.sharedWith(userId);
    if (shared.length === 0) return [];
    const entries = await reads.files.liveByIdsAnyOwner(shared.map((s) => s.file_id));
    const byId = new Map(entries.map((e) => [e.id, e]));
    const candidates = shared.flatMap((s) => {
      const entry = byId.get(s.file_id);
      return entry
        ? [
            {
              memberId: s.member_id,
              fileId: s.file_id,
              name: entry.name,
              kind: entry.kind,
              ownerId: s.owner_id,
              owner: s.owner,
              role: s.role,
            },
          ]
        : [];
    });
    return mountNames(candidates, (names) => reads.files.liveNamesAmong(userId, '', names));
  }

  /**
   * Where a new entry goes: the user's own root (no parent), or a folder they own or edit. The
   * answer's `ownerId` is whose tree (and quota) the new entry joins.
   */
  async parent(userId: string, parentId: string | null | undefined): Promise<Access> {
    if (parentId === null || parentId === undefined || parentId === '')
      return { ownerId: userId, role: 'owner', canChangeItself: true, shareRootId: null };
    return this.require(userId, parentId, 'write');
  }
}

/**
 * Unique names for the mounts among the recipient's own top-level names (which always win).
 * `taken` answers which of some names the recipient's root has: asked once for every mount's
 * first two choices, and again only for a numbered name (two shares of one name and owner).
 */
export async function mountNames<T extends { name: string; owner: string }>(
  mounts: T[],
  taken: (names: string[]) => Promise<Set<string>>,
): Promise<T[]> {
  if (mounts.length === 0) return [];
  const withOwner = (m: T, n?: number) => `${m.name} (${m.owner}${n === undefined ? '' : ` ${n}`})`;
  const asked = mounts.flatMap((m) => [m.name, withOwner(m)]);
  const own = await taken(asked);
  const known = new Set(asked);
  const used = new Set<string>();
  const free = async (name: string) => {
    if (used.has(name)) return false;
    if (!known.has(name)) {
      known.add(name);
      if ((await taken([name])).has(name)) own.add(name);
    }
    return !own.has(name);
  };
  const named: T[] = [];
  for (const m of mounts) {
    let name = m.name;
    if (!(await free(name))) name = withOwner(m);
    for (let n = 2; !(await free(name)); n++) name = withOwner(m, n);
    used.add(name);
    named.push({ ...m, name });
  }
  return named;
}

function forbidden(need: Need): HttpError {
  return new HttpError(
    'forbidden',
    need === 'owner'
      ? 'only the owner can do this'
      : 'this item is shared with you as a viewer: you can open and download it, not change it',
  );
}
