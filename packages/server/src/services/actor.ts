import { AsyncLocalStorage } from 'node:async_hooks';
import { requestContext } from '@fastify/request-context';
import type { FastifyRequest } from 'fastify';
import type { SessionClient } from '../repositories/sessions.ts';

/**
 * Who made a change, as versions, history and alerts name it: a signed-in web session, an app
 * password (by its name: the program or device it was made for), a share link, or dfs itself
 * (jobs, restores it runs). `via` says which door the request came in by.
 */
export interface Actor {
  type: 'session' | 'app_password' | 'share' | 'system';
  name: string;
  appPasswordId?: string;
  /**
   * The account behind the change, by name: in a shared folder the owner's history says which
   * member did it. Absent for share links and dfs itself, and in events recorded before sharing.
   */
  username?: string;
  via: 'api' | 'webdav' | 'nextcloud' | 'tus' | 'job' | 'restore';
}

declare module '@fastify/request-context' {
  interface RequestContextData {
    actor: Actor;
    /** The request being served: what an audit event of a service takes its address and user from. */
    request: FastifyRequest;
  }
}

export const SYSTEM_ACTOR: Actor = { type: 'system', name: 'dfs', via: 'job' };

const acting = new AsyncLocalStorage<Actor>();

/** The request's actor, set once it is authenticated; dfs itself outside any request. */
export function currentActor(): Actor {
  return acting.getStore() ?? requestContext.get('actor') ?? SYSTEM_ACTOR;
}

/**
 * Runs `work` with the changes it makes told as `actor`'s: a restore's are the user's, `via`
 * `restore`, so history says what put things back and the mass-change guard leaves them alone.
 */
export function actingAs<T>(actor: Actor, work: () => Promise<T>): Promise<T> {
  return acting.run(actor, work);
}

/** The current actor as a row keeps it. */
export const actorJson = (): string => JSON.stringify(currentActor());

/** An actor a row kept; null when none was (made before dfs kept them). */
export function actorOf(json: string | null | undefined): Actor | null {
  if (!json) return null;
  try {
    return JSON.parse(json) as Actor;
  } catch {
    return null;
  }
}

function viaOf(url: string): Actor['via'] {
  if (url.startsWith('/remote.php/')) return 'nextcloud';
  if (url === '/dav' || url.startsWith('/dav/')) return 'webdav';
  if (url.startsWith('/api/tus')) return 'tus';
  return 'api';
}

/** Remembers the request being served, for whatever a service records of it (the audit log). */
export function rememberRequest(request: FastifyRequest): void {
  requestContext.set('request', request);
}

/** The request being served; undefined outside one (jobs, the command line). */
export function currentRequest(): FastifyRequest | undefined {
  try {
    return requestContext.get('request');
  } catch {
    return undefined;
  }
}

/** Records the authenticated request's actor for whatever it changes. */
export function setRequestActor(request: FastifyRequest): void {
  const auth = request.auth;
  if (!auth) return;
  const via = viaOf(request.url);
  requestContext.set(
    'actor',
    auth.appPasswordId
      ? {
          type: 'app_password',
          name: auth.appPasswordName ?? 'app password',
          appPasswordId: auth.appPasswordId,
          username: auth.user.username,
          via,
        }
      : { type: 'session', name: 'web', username: auth.user.username, via },
  );
}

/** The browser or device behind a request, as the sessions list and the audit log show it. */
export function sessionClient(request: FastifyRequest): SessionClient {
  const agent = request.headers['user-agent'];
  return { userAgent: typeof agent === 'string' && agent !== '' ? agent : null, address: request.ip ?? null };
}
