import { type Static, Type } from '@sinclair/typebox';

export const ErrorBody = Type.Object(
  {
    error: Type.Object({ code: Type.String(), message: Type.String() }, { additionalProperties: true }),
  },
  { $id: 'ErrorBody' },
);

export const Id = Type.String({ minLength: 1, maxLength: 64 });
export const Sha1 = Type.String({ pattern: '^[0-9a-f]{40}$' });
export const IsoDate = Type.String({ format: 'date-time' });

/** 1–255 bytes of UTF-8, no `/`, no NUL, not `.` or `..`; byte length is checked in `validateName`. */
export const Name = Type.String({ minLength: 1, maxLength: 255 });

export const MAX_NAME_BYTES = 255;

/**
 * A pattern for text without a lone UTF-16 surrogate (JSON can carry `"\\ud800"`; it has no
 * UTF-8 form, so a database would keep U+FFFD instead), for text the API stores that
 * `nameProblem` does not check. Written with code-unit ranges so that it means the same with or
 * without a regular expression's `u` flag.
 */
export const WELL_FORMED_TEXT = '^(?:[^\\uD800-\\uDFFF]|[\\uD800-\\uDBFF][\\uDC00-\\uDFFF])*$';

/** Returns a human reason when `name` is not a valid file or folder name, else null. */
export function nameProblem(name: string): string | null {
  if (name.length === 0) return 'name must not be empty';
  // A lone UTF-16 surrogate has no UTF-8 form: databases would store it differently, or not at all.
  if (/\p{Cs}/u.test(name)) return 'name is not valid Unicode (a lone surrogate)';
  if (new TextEncoder().encode(name).length > MAX_NAME_BYTES) return 'name is longer than 255 bytes';
  if (name.includes('/')) return 'name must not contain "/"';
  if (name.includes('\0')) return 'name must not contain NUL';
  if (name === '.' || name === '..') return 'name must not be "." or ".."';
  return null;
}

export type TId = Static<typeof Id>;
