import { type Static, Type } from '@sinclair/typebox';
import { Id, IsoDate, Name, Sha1 } from './common.ts';

/**
 * `download` (the default): a link to a file that serves its bytes. `upload`: an upload request,
 * a link to a folder that takes files into it and never lists or serves what is there.
 */
export const ShareKind = Type.Union([Type.Literal('download'), Type.Literal('upload')]);
export type ShareKind = Static<typeof ShareKind>;

export const CreateShareBody = Type.Object({
  kind: Type.Optional(ShareKind),
  expiresInSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 * 365 * 86400 })),
  /** An absolute expiry; instead of `expiresInSeconds`, not with it. */
  expiresAt: Type.Optional(IsoDate),
  password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  /** Download links only. */
  maxDownloads: Type.Optional(Type.Integer({ minimum: 1 })),
  /** Upload requests only: the most bytes the link takes in all. */
  maxBytes: Type.Optional(Type.Integer({ minimum: 1 })),
});
export type CreateShareBody = Static<typeof CreateShareBody>;

export const Share = Type.Object(
  {
    token: Type.String(),
    kind: ShareKind,
    url: Type.String(),
    fileId: Id,
    name: Type.String(),
    expiresAt: Type.Union([IsoDate, Type.Null()]),
    maxDownloads: Type.Union([Type.Integer(), Type.Null()]),
    downloads: Type.Integer(),
    hasPassword: Type.Boolean(),
    /** Upload requests: the most bytes the link takes (null: no limit) and what it took. */
    maxBytes: Type.Union([Type.Integer(), Type.Null()]),
    bytesReceived: Type.Integer(),
    createdAt: IsoDate,
  },
  { $id: 'Share' },
);
export type Share = Static<typeof Share>;

export const ShareResponse = Type.Object({ share: Share });
export const ShareList = Type.Object({ items: Type.Array(Share) });
export type ShareList = Static<typeof ShareList>;

export const PublicShare = Type.Object({
  name: Type.String(),
  size: Type.Integer(),
  expiresAt: Type.Union([IsoDate, Type.Null()]),
  hasPassword: Type.Boolean(),
});
export type PublicShare = Static<typeof PublicShare>;

/**
 * What an upload request's page needs, and nothing of what the folder holds: its name, whether a
 * password is asked, the expiry, the byte limit and what is left of it (null: no limit).
 */
export const PublicUploadRequest = Type.Object({
  kind: Type.Literal('upload'),
  name: Type.String(),
  expiresAt: Type.Union([IsoDate, Type.Null()]),
  hasPassword: Type.Boolean(),
  maxBytes: Type.Union([Type.Integer(), Type.Null()]),
  bytesLeft: Type.Union([Type.Integer(), Type.Null()]),
});
export type PublicUploadRequest = Static<typeof PublicUploadRequest>;

/** `GET /api/public/shares/:token`: a download link's file, or an upload request's folder. */
export const PublicLink = Type.Union([PublicShare, PublicUploadRequest]);
export type PublicLink = Static<typeof PublicLink>;

export function isUploadRequest(link: PublicLink): link is PublicUploadRequest {
  return (link as Partial<PublicUploadRequest>).kind === 'upload';
}

/** `POST /api/public/shares/:token/files`: the file as it was named in the folder. */
export const DroppedFile = Type.Object({ name: Type.String(), size: Type.Integer() });
export type DroppedFile = Static<typeof DroppedFile>;

export const ShareTokenParams = Type.Object({ token: Type.String({ minLength: 1, maxLength: 128 }) });

/** A short-lived download URL for a link: plain navigation (or any HTTP client) fetches it. */
export const ShareGrant = Type.Object({ url: Type.String(), expiresAt: IsoDate });
export type ShareGrant = Static<typeof ShareGrant>;

/**
 * `POST /api/public/shares/:token/uploads`: a resumable upload through an upload request. The
 * name the uploader typed rides along (`anonymous` when empty), for the owner's history.
 */
export const CreateDropUploadBody = Type.Object({
  name: Name,
  size: Type.Integer({ minimum: 0 }),
  /** Checked at `complete` when given; without it the server's own digest names the content. */
  sha1: Type.Optional(Sha1),
  mtime: Type.Optional(IsoDate),
  uploader: Type.Optional(Type.String({ maxLength: 1024 })),
});
export type CreateDropUploadBody = Static<typeof CreateDropUploadBody>;

export const DropUploadParams = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 128 }),
  uploadId: Id,
});
export const DropChunkParams = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 128 }),
  uploadId: Id,
  index: Type.Integer({ minimum: 0 }),
});
