import { MTIME_MAX_AHEAD_MS } from '@dfs/shared';
import { HttpError } from '../errors.ts';

/**
 * A source file's modification time, as clients send it, to epoch ms. Times before 1970 or more
 * than a day ahead of the server's clock are refused: they are a client's bug (a zero, a time in
 * seconds read as ms), and a sync client would compare against them forever.
 */
function checked(ms: number, now: number, given: string): number {
  if (!Number.isFinite(ms) || ms < 0 || ms > now + MTIME_MAX_AHEAD_MS) {
    throw new HttpError('bad_request', `mtime "${given}" is not a time between 1970 and a day from now`);
  }
  return Math.round(ms);
}

/** An ISO 8601 date-time with a zone (`2026-12-07T01:02:03.456Z`); milliseconds are kept. */
export function mtimeFromIso(value: string, now: number): number {
  // Date.parse takes forms that are not ISO 8601 ("Dec 7 2026"): insist on the shape first.
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(value)) {
    throw new HttpError('bad_request', `mtime "${value}" is not an ISO 8601 date-time with a zone`);
  }
  return checked(Date.parse(value), now, value);
}

/** Seconds since 1970, possibly fractional (`X-OC-Mtime: 1700000000.5`). */
export function mtimeFromSeconds(value: string, now: number): number {
  const text = value.trim();
  if (!/^\d{1,12}(\.\d+)?$/.test(text)) {
    throw new HttpError('bad_request', `mtime "${value}" is not a number of seconds since 1970`);
  }
  return checked(Number(text) * 1000, now, value);
}

/** Either form: plain seconds when the value is a number, ISO 8601 otherwise (tus metadata). */
export function mtimeFromText(value: string, now: number): number {
  return /^\s*\d+(\.\d+)?\s*$/.test(value) ? mtimeFromSeconds(value, now) : mtimeFromIso(value, now);
}
