import { type Static, Type } from '@sinclair/typebox';
import { Id, IsoDate, Name, Sha1 } from './common.ts';
import { FileEntry } from './files.ts';

/**
 * What an upload does when its name is taken in the folder: `rename` (the default: ` (1)`…),
 * `replace` (the file there gets the new content, its old one kept as a version) or `fail` (409).
 */
export const OnConflict = Type.Union([Type.Literal('rename'), Type.Literal('replace'), Type.Literal('fail')]);
export type OnConflict = Static<typeof OnConflict>;

/** An `onConflict` given as text (a form field, tus metadata): undefined when absent. */
export function parseOnConflict(value: string | undefined): OnConflict | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'rename' || value === 'replace' || value === 'fail') return value;
  throw new RangeError(`onConflict must be "rename", "replace" or "fail", not "${value}"`);
}

export const Proof = Type.Object({ challengeId: Id, sha1: Sha1 });
export type Proof = Static<typeof Proof>;

/**
 * Without `sha1` the upload is speculative: chunks may go up while the client is still hashing,
 * and `complete` carries the hash.
 */
export const CreateUploadBody = Type.Object({
  name: Name,
  size: Type.Integer({ minimum: 0 }),
  sha1: Type.Optional(Sha1),
  parentId: Type.Optional(Type.Union([Id, Type.Null()])),
  proof: Type.Optional(Proof),
  /** The source file's modification time (ISO 8601, ms kept); the file entry's `mtime`. */
  mtime: Type.Optional(IsoDate),
  /** When the name is taken in the folder: `rename` (default), `replace` or `fail`. */
  onConflict: Type.Optional(OnConflict),
});
export type CreateUploadBody = Static<typeof CreateUploadBody>;

export const Challenge = Type.Object({
  id: Id,
  nonce: Type.String(),
  offset: Type.Integer({ minimum: 0 }),
  length: Type.Integer({ minimum: 0 }),
});
export type Challenge = Static<typeof Challenge>;

export const UploadSession = Type.Object({
  uploadId: Id,
  name: Type.String(),
  size: Type.Integer(),
  /** null for a speculative upload until `complete` names the hash. */
  sha1: Type.Union([Sha1, Type.Null()]),
  chunkSize: Type.Integer(),
  chunkCount: Type.Integer(),
  receivedChunks: Type.Array(Type.Integer()),
  expiresAt: IsoDate,
});
export type UploadSession = Static<typeof UploadSession>;

export const CreateUploadResponse = Type.Union([
  Type.Object({ status: Type.Literal('challenge'), challenge: Challenge }),
  Type.Object({ status: Type.Literal('instant'), file: FileEntry }),
  Type.Composite([
    Type.Object({ status: Type.Union([Type.Literal('created'), Type.Literal('resumed')]) }),
    UploadSession,
  ]),
]);
export type CreateUploadResponse = Static<typeof CreateUploadResponse>;

/** Required for a speculative upload; when the upload was created with a sha1, it must match. */
export const CompleteUploadBody = Type.Object({ sha1: Type.Optional(Sha1) });
export type CompleteUploadBody = Static<typeof CompleteUploadBody>;

export const CompleteUploadResponse = Type.Object({ status: Type.Literal('complete'), file: FileEntry });
export type CompleteUploadResponse = Static<typeof CompleteUploadResponse>;

export const UploadParams = Type.Object({ uploadId: Id });
export const ChunkParams = Type.Object({ uploadId: Id, index: Type.Integer({ minimum: 0 }) });
