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
    /** The door it came in by: the JSON API, WebDAV, the Nextcloud clients' routes, tus, a job. */
    via: Type.Optional(
      Type.Union([
        Type.Literal('api'),
        Type.Literal('webdav'),
        Type.Literal('nextcloud'),
        Type.Literal('tus'),
        Type.Literal('job'),
      ]),
    ),
    appPasswordId: Type.Optional(Id),
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
