import { ERROR_STATUS, type ErrorCode } from '@dfs/shared';

/** The one error type services throw; the error handler turns it into `{error: {code, message}}`. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.status = ERROR_STATUS[code];
  }
}

export const notFound = (what = 'not found') => new HttpError('not_found', what);
