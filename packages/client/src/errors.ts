import { type ErrorCode, isErrorCode } from '@dfs/shared';

/** An HTTP answer with an error status, parsed from `{"error": {code, message, ...}}`. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  /** The HTTP status. */
  readonly status: number;
  /** The API error code (see `ERROR_STATUS` in @dfs/shared); `http_<status>` when the body had none. */
  readonly code: ErrorCode | `http_${number}`;
  /** Every other field of the error object (e.g. `missing` for `incomplete`). */
  readonly details: Record<string, unknown>;
  /** Seconds from a `Retry-After` header, when the server sent one. */
  readonly retryAfter: number | null;

  constructor(
    status: number,
    code: ErrorCode | `http_${number}`,
    message: string,
    details: Record<string, unknown> = {},
    retryAfter: number | null = null,
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }

  /** Builds the error from a non-2xx response, reading its JSON body when there is one. */
  static async fromResponse(res: Response): Promise<ApiError> {
    let code: ErrorCode | `http_${number}` = `http_${res.status}`;
    let message = res.statusText || `HTTP ${res.status}`;
    const details: Record<string, unknown> = {};
    const text = await res.text().catch(() => '');
    if (text) {
      try {
        const body: unknown = JSON.parse(text);
        const err = body && typeof body === 'object' ? (body as { error?: unknown }).error : undefined;
        if (err && typeof err === 'object') {
          for (const [k, v] of Object.entries(err)) {
            if (k === 'code') {
              if (isErrorCode(v)) code = v;
            } else if (k === 'message') {
              if (typeof v === 'string') message = v;
            } else details[k] = v;
          }
        }
      } catch {
        // not JSON (a proxy's HTML page): keep the status text
      }
    }
    const ra = res.headers.get('retry-after');
    const retryAfter = ra !== null && /^\d+$/.test(ra.trim()) ? Number(ra) : null;
    return new ApiError(res.status, code, message, details, retryAfter);
  }
}

/** The request never produced an HTTP answer (DNS, refused connection, reset, CORS, offline). */
export class NetworkError extends Error {
  override readonly name = 'NetworkError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A hash worker crashed: the pool it belongs to is broken and should be replaced. */
export class HashWorkerError extends Error {
  override readonly name = 'HashWorkerError';
}

/** An upload stopped by `cancel()`. */
export class CanceledError extends Error {
  override readonly name = 'CanceledError';
  constructor(message = 'upload canceled') {
    super(message);
  }
}

/** True for the error an aborted `fetch`/`AbortSignal` produces (a DOMException named AbortError). */
export function isAbortError(err: unknown): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    ((err as { name?: unknown }).name === 'AbortError' || (err as { name?: unknown }).name === 'TimeoutError')
  );
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
