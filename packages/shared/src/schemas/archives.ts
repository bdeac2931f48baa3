import { type Static, Type } from '@sinclair/typebox';
import { Id, IsoDate, WELL_FORMED_TEXT } from './common.ts';

/** At most this many entries (files and folders, as selected) per archive request. */
export const ARCHIVE_MAX_IDS = 10_000;

/**
 * `POST /api/archives`: the selection to download as one ZIP (folders with everything in them).
 * The answer is a short-lived URL that a plain navigation downloads, so the browser streams the
 * archive to disk as the server writes it.
 */
export const CreateArchiveBody = Type.Object({
  ids: Type.Array(Id, { minItems: 1, maxItems: ARCHIVE_MAX_IDS, uniqueItems: true }),
  /** The archive's file name without `.zip`; default: the one folder's name, or "dfs-<date>". */
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: WELL_FORMED_TEXT })),
});
export type CreateArchiveBody = Static<typeof CreateArchiveBody>;

export const Archive = Type.Object(
  {
    url: Type.String(),
    /** The file name the download will have. */
    name: Type.String(),
    expiresAt: IsoDate,
  },
  { $id: 'Archive' },
);
export type Archive = Static<typeof Archive>;
