/**
 * An upload's life:
 * queued → hashing → checking → uploading → completing → done,
 * with `paused` / `error` reachable from any active state (and back to `queued` by resume/retry),
 * and `canceled` reachable from every state but `done`. A small file goes queued → uploading →
 * done (hashed in memory first); a speculative upload goes checking → uploading while it
 * hashes, then, once every chunk is sent, hashing (if the hash is still running) → checking →
 * completing.
 */
export type UploadState =
  | 'queued'
  | 'hashing'
  | 'checking'
  | 'uploading'
  | 'completing'
  | 'done'
  | 'error'
  | 'paused'
  | 'canceled';

export const ACTIVE_STATES: ReadonlySet<UploadState> = new Set([
  'hashing',
  'checking',
  'uploading',
  'completing',
]);
export const FINAL_STATES: ReadonlySet<UploadState> = new Set(['done', 'canceled']);

const TRANSITIONS: Record<UploadState, readonly UploadState[]> = {
  // checking directly: sha1 already known (option or resume store), or a speculative upload;
  // uploading directly: a small file
  queued: ['hashing', 'checking', 'uploading', 'paused', 'canceled', 'error'],
  // hashing again after a hash_mismatch on a cached sha1
  hashing: ['checking', 'paused', 'canceled', 'error'],
  // done: instant upload
  checking: ['hashing', 'uploading', 'completing', 'done', 'paused', 'canceled', 'error'],
  // checking: the session expired, or the hash of a speculative upload is done;
  // hashing: a stale cached sha1, or a speculative upload waiting for its hash;
  // done: the server turned out to have the content of a speculative upload
  uploading: ['completing', 'checking', 'hashing', 'done', 'paused', 'canceled', 'error'],
  // uploading: the server reported missing chunks
  completing: ['done', 'uploading', 'checking', 'hashing', 'paused', 'canceled', 'error'],
  done: [],
  error: ['queued', 'canceled'],
  paused: ['queued', 'canceled'],
  canceled: [],
};

export function canTransition(from: UploadState, to: UploadState): boolean {
  return TRANSITIONS[from].includes(to);
}
