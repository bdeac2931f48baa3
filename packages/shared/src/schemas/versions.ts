import { type Static, Type } from '@sinclair/typebox';
import { Id, IsoDate, Sha1 } from './common.ts';
import { FileEntry } from './files.ts';

/** Who made a change: a web session, an app password (by name), a share link, or dfs itself. */
export const Actor = Type.Object(
  {
    type: Type.Union([
      Type.Literal('session'),
      Type.Literal('app_password'),
      Type.Literal('share'),
      Type.Literal('system'),
    ]),
    name: Type.String(),
    /** The door it came in by: the JSON API, WebDAV, the Nextcloud clients' routes, tus, a job, a restore. */
    via: Type.Optional(
      Type.Union([
        Type.Literal('api'),
        Type.Literal('webdav'),
        Type.Literal('nextcloud'),
        Type.Literal('tus'),
        Type.Literal('job'),
        Type.Literal('restore'),
      ]),
    ),
    appPasswordId: Type.Optional(Id),
    /** The account that made the change (in a shared folder, which member it was). */
    username: Type.Optional(Type.String()),
  },
  { $id: 'Actor' },
);
export type Actor = Static<typeof Actor>;

/**
 * One content a file has had. `current` is the file's content now (its `id` is `current`); the
 * others were replaced and are kept. `actor`: who made that content, when known.
 */
export const FileVersion = Type.Object(
  {
    id: Type.String(),
    size: Type.Integer({ minimum: 0 }),
    sha1: Sha1,
    /** When this content became the file's. */
    createdAt: IsoDate,
    /** The file's modification time while it had this content. */
    mtime: Type.Union([IsoDate, Type.Null()]),
    current: Type.Boolean(),
    /**
     * A kept version whose content a file (any user's, live or trashed) still has: it costs no
     * space and does not count toward the versions' share of the quota. False for the current
     * content, which counts in the quota as the file's.
     */
    free: Type.Boolean(),
    actor: Type.Union([Actor, Type.Null()]),
  },
  { $id: 'FileVersion' },
);
export type FileVersion = Static<typeof FileVersion>;

export const FileVersionList = Type.Object({ items: Type.Array(FileVersion) });
export type FileVersionList = Static<typeof FileVersionList>;

export const VersionParams = Type.Object({ id: Id, versionId: Type.String({ minLength: 1, maxLength: 64 }) });
export type VersionParams = Static<typeof VersionParams>;

export const RestoredVersion = Type.Object({ file: FileEntry });
export type RestoredVersion = Static<typeof RestoredVersion>;

/** One change to a user's tree. Paths are from the user's root (`/Docs/a.txt`); null where none. */
export const HistoryEvent = Type.Object(
  {
    id: Type.String(),
    at: IsoDate,
    action: Type.Union([
      Type.Literal('created'),
      Type.Literal('replaced'),
      Type.Literal('renamed'),
      Type.Literal('moved'),
      Type.Literal('trashed'),
      Type.Literal('restored'),
      Type.Literal('purged'),
    ]),
    fileId: Id,
    kind: Type.Union([Type.Literal('file'), Type.Literal('folder')]),
    /** Where the entry is after the change (null once trashed or purged). */
    path: Type.Union([Type.String(), Type.Null()]),
    /** Where it was before (null when it was just created). */
    oldPath: Type.Union([Type.String(), Type.Null()]),
    /** The content after (files), and before. */
    sha1: Type.Union([Sha1, Type.Null()]),
    oldSha1: Type.Union([Sha1, Type.Null()]),
    actor: Actor,
  },
  { $id: 'HistoryEvent' },
);
export type HistoryEvent = Static<typeof HistoryEvent>;

export const HistoryQuery = Type.Object({
  /** A folder: the events of everything in it, all levels down (and its own). */
  folderId: Type.Optional(Id),
  since: Type.Optional(IsoDate),
  until: Type.Optional(IsoDate),
  appPasswordId: Type.Optional(Id),
  actorType: Type.Optional(
    Type.Union([
      Type.Literal('session'),
      Type.Literal('app_password'),
      Type.Literal('share'),
      Type.Literal('system'),
    ]),
  ),
  cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,19}$' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
});
export type HistoryQuery = Static<typeof HistoryQuery>;

export const HistoryPage = Type.Object({
  items: Type.Array(HistoryEvent),
  /** Pass it as `cursor` for the next (older) page; null at the end. */
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});
export type HistoryPage = Static<typeof HistoryPage>;
