import { ChecksumMismatchError, NodeUnavailableError, ObjectNotFoundError } from '../types.ts';

interface SdkError {
  name?: string;
  code?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

/** HTTP status of an S3 error answer, or undefined for a transport failure. */
export function statusOf(err: unknown): number | undefined {
  return (err as SdkError | undefined)?.$metadata?.httpStatusCode;
}

export function isNotFound(err: unknown): boolean {
  const e = err as SdkError | undefined;
  return (
    statusOf(err) === 404 ||
    e?.name === 'NotFound' ||
    e?.name === 'NoSuchKey' ||
    e?.name === 'NoSuchUpload' ||
    e?.Code === 'NoSuchKey'
  );
}

/**
 * What the rest of the server understands: a missing object, a node that cannot be reached (no
 * answer, a timeout, a 5xx, or credentials the store refuses — an operator error that makes the
 * node unusable just the same), or the original error for anything that is a bug in the request.
 */
export function mapS3Error(err: unknown, what: string, node: string): Error {
  if (isNotFound(err)) return new ObjectNotFoundError(`${what}: not found on ${node}`);
  const named = err as SdkError | undefined;
  if (named?.name === 'BadDigest' || named?.Code === 'BadDigest' || named?.name === 'InvalidDigest') {
    return new ChecksumMismatchError(`${what}: ${node} found the bytes differ from their Content-MD5`);
  }
  const status = statusOf(err);
  const e = err as SdkError & Error;
  const detail = e?.name && e.name !== 'Error' ? `${e.name}: ${e.message}` : String(e?.message ?? err);
  if (status === undefined || status >= 500 || status === 403 || status === 401) {
    return new NodeUnavailableError(`${node}: ${what} failed (${status ?? 'no answer'}; ${detail})`);
  }
  return err instanceof Error ? err : new Error(`${node}: ${what} failed: ${detail}`);
}
