import type { Usage } from '@dfs/shared';
import { HttpError, notFound } from '../errors.ts';
import type { FileRow } from '../repositories/files.ts';
import type { Repositories } from '../repositories/index.ts';
import type { UserLimits } from './limits.ts';

/** The user's root: it has no row of its own. */
const ROOT = '';

/** What WebDAV sees at a path: the root, a folder or a file. */
export type DavResource =
  | { kind: 'root'; path: string[] }
  | { kind: 'folder' | 'file'; path: string[]; row: FileRow };

/**
 * WebDAV's view of a user's tree (/dav/ is their root). Paths are names, resolved one folder at a
 * time, as every user has their own names over the shared content rows.
 */
export class DavService {
  constructor(
    private readonly repos: Repositories,
    private readonly limits: UserLimits,
  ) {}

  /** The resource at `path` (decoded segments), or null when nothing is there. */
  async resolve(userId: string, path: string[]): Promise<DavResource | null> {
    if (path.length === 0) return { kind: 'root', path };
    let parent = ROOT;
    let row: FileRow | undefined;
    for (let i = 0; i < path.length; i++) {
      row = await this.repos.files.findLiveByName(userId, parent, path[i]!);
      if (!row || (i < path.length - 1 && row.kind !== 'folder')) return null;
      parent = row.id;
    }
    return row ? { kind: row.kind, path, row } : null;
  }

  async mustResolve(userId: string, path: string[]): Promise<DavResource> {
    const found = await this.resolve(userId, path);
    if (!found) throw notFound(`nothing at /${path.join('/')}`);
    return found;
  }

  /** A folder's (or the root's) live entries. */
  async children(userId: string, resource: DavResource): Promise<FileRow[]> {
    if (resource.kind === 'file') throw new HttpError('bad_request', 'a file has no members');
    const id = resource.kind === 'root' ? ROOT : resource.row.id;
    return this.repos.files.activeChildren(userId, [id]);
  }

  usage(userId: string): Promise<Usage> {
    return this.limits.usage(userId);
  }
}
