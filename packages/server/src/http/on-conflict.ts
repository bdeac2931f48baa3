import { type OnConflict, parseOnConflict } from '@dfs/shared';
import { HttpError } from '../errors.ts';

/** `onConflict` from a form field or tus metadata: a 400 names the allowed values. */
export function conflictRule(value: string | undefined): OnConflict | undefined {
  try {
    return parseOnConflict(value);
  } catch (error) {
    throw new HttpError('bad_request', (error as Error).message);
  }
}
