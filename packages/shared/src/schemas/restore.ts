import { type Static, Type } from '@sinclair/typebox';
import { Id, IsoDate } from './common.ts';
import { Actor } from './versions.ts';

/** Puts a folder's subtree (or, with `folderId: null`, the whole account) back as it was at `at`. */
export const RestoreBody = Type.Object({
  folderId: Type.Union([Id, Type.Null()]),
  at: IsoDate,
});
export type RestoreBody = Static<typeof RestoreBody>;

/**
 * What a restore did: entries put back (content, place or out of the trash), entries made after
 * `at` sent to the trash, entries already as they were. `unavailable`: entries whose state at
 * `at` can no longer be made (purged from the trash, or a version no longer kept).
 */
export const RestoreResult = Type.Object({
  restored: Type.Integer({ minimum: 0 }),
  trashed: Type.Integer({ minimum: 0 }),
  unchanged: Type.Integer({ minimum: 0 }),
  unavailable: Type.Integer({ minimum: 0 }),
});
export type RestoreResult = Static<typeof RestoreResult>;

/** A restore too large to answer at once runs as a job: follow it at `GET /api/jobs/:id`. */
export const RestoreStarted = Type.Object({ jobId: Type.String() });
export type RestoreStarted = Static<typeof RestoreStarted>;

export const UserJob = Type.Object(
  {
    id: Type.String(),
    kind: Type.Literal('restore'),
    state: Type.Union([Type.Literal('running'), Type.Literal('done'), Type.Literal('failed')]),
    progress: Type.Object({ done: Type.Integer({ minimum: 0 }), total: Type.Integer({ minimum: 0 }) }),
    result: Type.Union([RestoreResult, Type.Null()]),
    /** Why it failed (state `failed`). */
    error: Type.Union([Type.String(), Type.Null()]),
    createdAt: IsoDate,
    updatedAt: IsoDate,
  },
  { $id: 'UserJob' },
);
export type UserJob = Static<typeof UserJob>;

export const JobParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
export type JobParams = Static<typeof JobParams>;

/**
 * Many files changed by one actor in a short time (`DFS_MASS_CHANGE_FILES` within
 * `DFS_MASS_CHANGE_MINUTES`): a sync client gone wrong, or ransomware. `restoreAt` is just before
 * the burst began; undoing restores `folderId` (the folder holding every change; null: the whole
 * account) to it.
 */
export const Alert = Type.Object(
  {
    id: Type.String(),
    kind: Type.Literal('mass_change'),
    /** When the burst began. */
    at: IsoDate,
    /** The last change of it seen so far. */
    lastAt: IsoDate,
    actor: Actor,
    /** Files (and folders) the actor changed: replaced, renamed, moved or trashed. */
    files: Type.Integer({ minimum: 0 }),
    folderId: Type.Union([Id, Type.Null()]),
    /** That folder's path, for the message ("/" for the whole account). */
    folderPath: Type.String(),
    restoreAt: IsoDate,
  },
  { $id: 'Alert' },
);
export type Alert = Static<typeof Alert>;

export const AlertList = Type.Object({ items: Type.Array(Alert) });
export type AlertList = Static<typeof AlertList>;

/** `at`: read the past (a folder's entries, a file's bytes) as they were at that time. */
export const AtQuery = Type.Object({ at: Type.Optional(IsoDate) });
export type AtQuery = Static<typeof AtQuery>;
