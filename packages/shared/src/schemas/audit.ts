import { type Static, Type } from '@sinclair/typebox';
import { IsoDate } from './common.ts';

/**
 * Every action the audit log records, by dotted name: one list, so the API's filter, the OpenAPI
 * document and the web app's select agree.
 */
export const AUDIT_ACTIONS = [
  'auth.signin',
  'auth.signin_failed',
  'auth.password_changed',
  'totp.enabled',
  'totp.disabled',
  'passkey.added',
  'passkey.removed',
  'app_password.created',
  'app_password.revoked',
  'session.revoked',
  'share.created',
  'share.deleted',
  'share.member_added',
  'share.member_changed',
  'share.member_removed',
  'group.created',
  'group.deleted',
  'group.member_added',
  'group.member_removed',
  'admin.user_created',
  'admin.user_updated',
  'admin.user_disabled',
  'admin.user_enabled',
  'admin.password_reset',
  'admin.two_factor_reset',
  'admin.invite_created',
  'admin.invite_deleted',
  'node.drained',
  'node.undrained',
  'restore.started',
  'mass_change.alert',
  'backup.created',
  'backup.failed',
  'backup.restored',
] as const;

export const AuditAction = Type.Union(AUDIT_ACTIONS.map((action) => Type.Literal(action)));
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const AuditEvent = Type.Object(
  {
    /** Increasing; with `at`, what a page's cursor is made of. */
    id: Type.String(),
    at: IsoDate,
    /** The account that acted; null for dfs itself, or an account that did not sign in. */
    actorId: Type.Union([Type.String(), Type.Null()]),
    /** Its username, kept after the account is deleted; for a failed sign-in, the name tried. */
    actorUsername: Type.Union([Type.String(), Type.Null()]),
    action: AuditAction,
    targetType: Type.Union([Type.String(), Type.Null()]),
    targetId: Type.Union([Type.String(), Type.Null()]),
    /** The client address (behind a proxy only with DFS_TRUST_PROXY); null outside a request. */
    address: Type.Union([Type.String(), Type.Null()]),
    /** The User-Agent, cut to 255 characters. */
    userAgent: Type.Union([Type.String(), Type.Null()]),
    details: Type.Record(Type.String(), Type.Unknown()),
  },
  { $id: 'AuditEvent' },
);
export type AuditEvent = Static<typeof AuditEvent>;

/** `GET /api/admin/audit` and its export: every filter optional, `from`/`to` inclusive. */
export const AuditQuery = Type.Object(
  {
    /** A username (as the actor, or the name a failed sign-in tried). */
    user: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    action: Type.Optional(AuditAction),
    from: Type.Optional(IsoDate),
    to: Type.Optional(IsoDate),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    /** The previous page's `nextCursor`. */
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,16}\\.[0-9]{1,19}$' })),
  },
  { additionalProperties: false },
);
export type AuditQuery = Static<typeof AuditQuery>;

export const AuditPage = Type.Object({
  /** Newest first. */
  events: Type.Array(AuditEvent),
  /** Pass it as `cursor` for the next (older) page; null at the end. */
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});
export type AuditPage = Static<typeof AuditPage>;
