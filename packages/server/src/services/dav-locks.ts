import { randomUUID } from 'node:crypto';
import { HttpError } from '../errors.ts';
import type { DavLockRow } from '../repositories/dav-locks.ts';
import type { Repositories } from '../repositories/index.ts';
import type { DavLimits } from './dav-limits.ts';
import type { TreeLocks } from './files.ts';
import { splitMount } from './webdav.ts';

/** Locks last this long when the client asks for no timeout, or more than the maximum. */
const DEFAULT_TIMEOUT_S = 600;
const MAX_TIMEOUT_S = 7 * 86400;

export const davKey = (path: string[]) => path.join('/');

function covers(lock: DavLockRow, key: string): boolean {
  if (lock.path === key) return true;
  if (lock.depth !== 'infinity') return false;
  return lock.path === '' || key.startsWith(`${lock.path}/`);
}

function below(lock: DavLockRow, key: string): boolean {
  return key === '' ? lock.path !== '' : lock.path.startsWith(`${key}/`);
}

/** The locks among `locks` that cover `path` (its own, and depth-infinity ones above it). */
export function locksCovering(locks: DavLockRow[], path: string[]): DavLockRow[] {
  const key = davKey(path);
  return locks.filter((l) => covers(l, key));
}

/** `Timeout: Second-600, Infinite` → seconds, bounded. */
export function parseTimeout(header: string | undefined): number {
  for (const part of (header ?? '').split(',')) {
    const t = part.trim();
    if (/^Second-\d+$/i.test(t)) return Math.min(MAX_TIMEOUT_S, Math.max(1, Number(t.slice(7))));
    if (/^Infinite$/i.test(t)) return MAX_TIMEOUT_S;
  }
  return DEFAULT_TIMEOUT_S;
}

/** One condition of an `If` header list: a state token or an entity tag, maybe negated. */
interface IfCondition {
  not: boolean;
  token?: string;
  etag?: string;
}

/** RFC 4918 §10.4: lists of conditions, each list optionally tagged with a resource. */
export function parseIf(header: string): Array<{ resource: string | null; conditions: IfCondition[] }> {
  const out: Array<{ resource: string | null; conditions: IfCondition[] }> = [];
  let resource: string | null = null;
  let i = 0;
  const fail = () => new HttpError('bad_request', 'the If header is malformed');
  while (i < header.length) {
    const c = header[i]!;
    if (c === ' ' || c === '\t') i++;
    else if (c === '<') {
      const end = header.indexOf('>', i);
      if (end < 0) throw fail();
      resource = header.slice(i + 1, end);
      i = end + 1;
    } else if (c === '(') {
      const end = header.indexOf(')', i);
      if (end < 0) throw fail();
      const body = header.slice(i + 1, end);
      const conditions: IfCondition[] = [];
      const re = /\s*(Not\s+)?(?:<([^>]*)>|\[([^\]]*)\])/y;
      let at = 0;
      for (let m = re.exec(body); m; m = re.exec(body)) {
        conditions.push({ not: Boolean(m[1]), ...(m[2] !== undefined ? { token: m[2] } : { etag: m[3] }) });
        at = re.lastIndex;
      }
      if (body.slice(at).trim() !== '' || conditions.length === 0) throw fail();
      out.push({ resource, conditions });
      i = end + 1;
    } else throw fail();
  }
  return out;
}

/**
 * WebDAV locks (RFC 4918 class 2), kept in the database by path so that every app instance sees
 * them. A write to a locked resource needs the lock's token in the `If` header; an `If` header
 * that evaluates false answers 412.
 */
export class DavLockService implements TreeLocks {
  constructor(
    private readonly repos: Repositories,
    private readonly now: () => number,
    private readonly limits: Pick<DavLimits, 'locksPerUser'>,
  ) {}

  live(userId: string): Promise<DavLockRow[]> {
    return this.repos.davLocks.live(userId, this.now());
  }

  /** Removes a lock just taken, when what it was taken for failed. */
  async withdraw(token: string): Promise<void> {
    await this.repos.davLocks.delete(token);
  }

  async covering(userId: string, path: string[]): Promise<DavLockRow[]> {
    return locksCovering(await this.live(userId), path);
  }

  async lock(
    userId: string,
    path: string[],
    request: { scope: 'exclusive' | 'shared'; depth: '0' | 'infinity'; owner: string; timeoutS: number },
  ): Promise<DavLockRow> {
    const key = davKey(path);
    const locks = await this.live(userId);
    const clash = locks.filter((l) => covers(l, key) || (request.depth === 'infinity' && below(l, key)));
    if (clash.some((l) => l.scope === 'exclusive' || request.scope === 'exclusive')) {
      throw new HttpError('locked', 'the resource is locked');
    }
    if (locks.length >= this.limits.locksPerUser)
      throw new HttpError(
        'insufficient_storage',
        `at most ${this.limits.locksPerUser} locks may be held at once; unlock some first`,
      );
    const row: DavLockRow = {
      token: `opaquelocktoken:${randomUUID()}`,
      user_id: userId,
      path: key,
      depth: request.depth,
      scope: request.scope,
      owner: request.owner,
      timeout_s: request.timeoutS,
      expires_at: this.now() + request.timeoutS * 1000,
    };
    await this.repos.davLocks.insert(row);
    return row;
  }

  /** Refreshes the lock whose token the `If` header names (a LOCK without a body). */
  async refresh(
    userId: string,
    path: string[],
    ifHeader: string | undefined,
    timeoutS: number,
  ): Promise<DavLockRow> {
    const tokens = new Set(
      parseIf(ifHeader ?? '').flatMap((l) =>
        l.conditions.filter((c) => c.token && !c.not).map((c) => c.token!),
      ),
    );
    const lock = (await this.covering(userId, path)).find((l) => tokens.has(l.token));
    if (!lock)
      throw new HttpError('precondition_failed', 'no lock of this resource is named in the If header');
    const expires = this.now() + timeoutS * 1000;
    await this.repos.davLocks.refresh(lock.token, timeoutS, expires);
    return { ...lock, timeout_s: timeoutS, expires_at: expires };
  }

  async unlock(userId: string, path: string[], tokenHeader: string | undefined): Promise<void> {
    const token = (tokenHeader ?? '').trim().replace(/^<|>$/g, '');
    const lock = (await this.covering(userId, path)).find((l) => l.token === token);
    if (!lock) throw new HttpError('name_conflict', 'that lock token does not lock this resource');
    await this.repos.davLocks.delete(lock.token);
  }

  /**
   * Before a write to `paths` (and, for `deep`, everything below them): the `If` header must hold
   * (412), and every lock in the way must be named in it (423).
   */
  async assertWritable(
    userId: string,
    requestPath: string[],
    paths: Array<{ path: string[]; deep: boolean }>,
    ifHeader: string | undefined,
    etagOf: (path: string[]) => Promise<string | null>,
  ): Promise<void> {
    const locks = await this.live(userId);
    let submitted = new Set<string>();
    if (ifHeader !== undefined) {
      const lists = parseIf(ifHeader);
      const holds = async (conditions: IfCondition[], path: string[]) => {
        const key = davKey(path);
        for (const c of conditions) {
          const ok =
            c.token !== undefined
              ? locks.some((l) => l.token === c.token && covers(l, key))
              : c.etag === (await etagOf(path));
          if (ok === c.not) return false;
        }
        return true;
      };
      let any = false;
      for (const list of lists) {
        const path = list.resource === null ? requestPath : pathOfTag(list.resource);
        if (await holds(list.conditions, path)) any = true;
      }
      if (!any) throw new HttpError('precondition_failed', 'the If header does not hold');
      submitted = new Set(lists.flatMap((l) => l.conditions.filter((c) => c.token).map((c) => c.token!)));
    }
    for (const { path, deep } of paths) {
      const key = davKey(path);
      const blocking = locks.filter((l) => covers(l, key) || (deep && below(l, key)));
      if (blocking.some((l) => !submitted.has(l.token)))
        throw new HttpError('locked', 'the resource is locked');
    }
  }

  /**
   * The API's writes have no `If` header to name a lock with: any lock on the path, or below it
   * for a `deep` write, refuses them until it is unlocked or expires.
   */
  async assertUnlocked(
    userId: string,
    paths: () => Promise<Array<{ path: string[]; deep: boolean }>>,
  ): Promise<void> {
    const locks = await this.live(userId);
    if (locks.length === 0) return;
    for (const { path, deep } of await paths()) {
      const key = davKey(path);
      if (locks.some((l) => covers(l, key) || (deep && below(l, key))))
        throw new HttpError(
          'locked',
          `/${path.join('/')} is locked by a WebDAV client; it can be changed once the lock is released or expires`,
        );
    }
  }

  /** A MOVE takes its locks' paths along; a DELETE ends them. */
  follow(userId: string, from: string[], to: string[] | null): Promise<void> {
    return this.repos.davLocks.movePaths(userId, davKey(from), to === null ? null : davKey(to), this.now());
  }
}

/** The path of an `If` header's tagged resource (an absolute URL or a path under a mount). */
function pathOfTag(tag: string): string[] {
  let pathname = tag;
  try {
    pathname = new URL(tag, 'http://x').pathname;
  } catch {
    // leave as is
  }
  let mounted: ReturnType<typeof splitMount> = null;
  try {
    mounted = splitMount(pathname);
  } catch {
    // a tag that is not valid percent-encoding names no resource of the tree
  }
  return (mounted ? mounted.rest : pathname)
    .split('/')
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
}
