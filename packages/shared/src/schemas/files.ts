import { type Static, Type } from '@sinclair/typebox';
import { Id, IsoDate, Name, Sha1 } from './common.ts';

export const FileKind = Type.Union([Type.Literal('file'), Type.Literal('folder')]);
export type FileKind = Static<typeof FileKind>;

export const FileEntry = Type.Object(
  {
    id: Id,
    kind: FileKind,
    name: Type.String(),
    parentId: Type.Union([Id, Type.Null()]),
    size: Type.Integer({ minimum: 0 }),
    sha1: Type.Union([Sha1, Type.Null()]),
    mime: Type.Union([Type.String(), Type.Null()]),
    createdAt: IsoDate,
    updatedAt: IsoDate,
    /**
     * The source file's modification time as the uploader gave it (`mtime`, WebDAV `X-OC-Mtime`);
     * when none was given, when the content was stored. Folders: `updatedAt`.
     */
    mtime: IsoDate,
    trashedAt: Type.Optional(Type.Union([IsoDate, Type.Null()])),
    /**
     * On entries the signed-in user does not own: how they reach it (the role of the share that
     * reaches it) and whose it is. Absent on one's own entries.
     */
    shared: Type.Optional(
      Type.Object({
        role: Type.Union([Type.Literal('viewer'), Type.Literal('editor')]),
        owner: Type.Object({ username: Type.String() }),
      }),
    ),
  },
  { $id: 'FileEntry' },
);
export type FileEntry = Static<typeof FileEntry>;

export const FileResponse = Type.Object({ file: FileEntry });
export type FileResponse = Static<typeof FileResponse>;

/**
 * `POST /api/files/batch`: many small files in one multipart request, each `file` part preceded by
 * its own optional `sha1` and `parentId` fields. One request and one transaction for all of them:
 * a folder of small files is bound by round trips, not bytes.
 */
export const FileBatchResponse = Type.Object({ files: Type.Array(FileEntry) });
export type FileBatchResponse = Static<typeof FileBatchResponse>;
/** At most this many files per batch… */
export const BATCH_MAX_FILES = 100;
/** …of at most this many bytes in all. */
export const BATCH_MAX_BYTES = 32 * 1024 * 1024;

/**
 * How far ahead of the server's clock an uploaded `mtime` may be (clients' clocks drift, and a
 * time zone mistake is at most a day); further ahead, or before 1970, is refused with 400.
 */
export const MTIME_MAX_AHEAD_MS = 24 * 60 * 60 * 1000;

export const SortField = Type.Union([
  Type.Literal('name'),
  Type.Literal('size'),
  Type.Literal('createdAt'),
  Type.Literal('updatedAt'),
  Type.Literal('mtime'),
]);
export type SortField = Static<typeof SortField>;
export const SortOrder = Type.Union([Type.Literal('asc'), Type.Literal('desc')]);
export type SortOrder = Static<typeof SortOrder>;

/** Listings (folders, search, trash) answer at most this many entries; `total` counts them all. */
export const MAX_PAGE_SIZE = 1000;
/** The page size when a listing request names no `limit`. */
export const DEFAULT_PAGE_SIZE = 200;

export const ListFilesQuery = Type.Object({
  parentId: Type.Optional(Id),
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  sort: Type.Optional(SortField),
  order: Type.Optional(SortOrder),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE })),
  offset: Type.Optional(Type.Integer({ minimum: 0 })),
  /** The folder as it was at this time (read-only; not with `q`). */
  at: Type.Optional(IsoDate),
});
export type ListFilesQuery = Static<typeof ListFilesQuery>;

export const FileList = Type.Object({ items: Type.Array(FileEntry), total: Type.Integer() });
export type FileList = Static<typeof FileList>;

export const CreateFolderBody = Type.Object({
  name: Name,
  parentId: Type.Optional(Type.Union([Id, Type.Null()])),
  /**
   * A folder of that name already there: `fail` (409 name_conflict, the default) or `reuse`
   * (200 with that folder; a file of that name is still a 409). Uploads of dropped folder trees
   * reuse, so dropping a folder twice merges into it.
   */
  existing: Type.Optional(Type.Union([Type.Literal('fail'), Type.Literal('reuse')])),
});
export type CreateFolderBody = Static<typeof CreateFolderBody>;

/** The folders from the root down to an entry, the entry last: breadcrumbs in one request. */
export const FilePath = Type.Object({ items: Type.Array(FileEntry) });
export type FilePath = Static<typeof FilePath>;

export const PatchFileBody = Type.Object({
  name: Type.Optional(Name),
  parentId: Type.Optional(Type.Union([Id, Type.Null()])),
});
export type PatchFileBody = Static<typeof PatchFileBody>;

export const ContentInfo = Type.Object({
  sha1: Sha1,
  size: Type.Integer(),
  createdAt: IsoDate,
  replicas: Type.Array(Type.Object({ nodeId: Id, nodeName: Type.String(), state: Type.String() })),
});
export type ContentInfo = Static<typeof ContentInfo>;

/** `GET /api/files/:id/summary`: what a folder holds, all levels down (live entries only). */
export const FolderSummary = Type.Object({
  files: Type.Integer({ minimum: 0 }),
  folders: Type.Integer({ minimum: 0 }),
  bytes: Type.Integer({ minimum: 0 }),
});
export type FolderSummary = Static<typeof FolderSummary>;
