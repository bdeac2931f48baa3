import { type Static, Type } from '@sinclair/typebox';
import { Id, IsoDate } from './common.ts';

export const CreateShareBody = Type.Object({
  expiresInSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 * 365 * 86400 })),
  password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  maxDownloads: Type.Optional(Type.Integer({ minimum: 1 })),
});
export type CreateShareBody = Static<typeof CreateShareBody>;

export const Share = Type.Object(
  {
    token: Type.String(),
    url: Type.String(),
    fileId: Id,
    name: Type.String(),
    expiresAt: Type.Union([IsoDate, Type.Null()]),
    maxDownloads: Type.Union([Type.Integer(), Type.Null()]),
    downloads: Type.Integer(),
    hasPassword: Type.Boolean(),
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

export const ShareTokenParams = Type.Object({ token: Type.String({ minLength: 1, maxLength: 128 }) });

/** A short-lived download URL for a link: plain navigation (or any HTTP client) fetches it. */
export const ShareGrant = Type.Object({ url: Type.String(), expiresAt: IsoDate });
export type ShareGrant = Static<typeof ShareGrant>;
