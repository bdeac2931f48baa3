import { type Static, Type } from '@sinclair/typebox';
import { Id, IsoDate } from './common.ts';

/**
 * A signed-in browser or device, as its user sees it in their sessions list. App passwords are
 * not sessions: they have their own list.
 */
export const SessionInfo = Type.Object(
  {
    id: Id,
    /** The User-Agent it signed in (or was last seen) with, cut to 255 characters; null: none sent. */
    userAgent: Type.Union([Type.String(), Type.Null()]),
    /** The client address as the server sees it (behind a proxy only with DFS_TRUST_PROXY). */
    address: Type.Union([Type.String(), Type.Null()]),
    createdAt: IsoDate,
    /** Last request, to the minute (the session slides forward at most once a minute). */
    lastSeenAt: IsoDate,
    /** The session asking. */
    current: Type.Boolean(),
  },
  { $id: 'SessionInfo' },
);
export type SessionInfo = Static<typeof SessionInfo>;

/** `GET /api/auth/sessions`: newest first. */
export const SessionList = Type.Object({ items: Type.Array(SessionInfo) });
export type SessionList = Static<typeof SessionList>;

/** `DELETE /api/auth/sessions`: how many other sessions were signed out. */
export const SignedOutSessions = Type.Object({ signedOut: Type.Integer({ minimum: 0 }) });
export type SignedOutSessions = Static<typeof SignedOutSessions>;
