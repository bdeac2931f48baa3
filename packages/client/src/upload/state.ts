/**
 * An upload's life:
 * queued → hashing → checking → uploading → completing → done,
 * with `paused` / `error` reachable from any active state (and back to `queued` by resume/retry),
 * and `canceled` reachable from every state but `done`.
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
  // checking directly: sha1 already known (option or resume store)
  queued: ['hashing', 'checking', 'paused', 'canceled', 'error'],
  // hashing again after a hash_mismatch on a cached sha1
  hashing: ['checking', 'paused', 'canceled', 'error'],
  // done: instant upload
  checking: ['hashing', 'uploading', 'completing', 'done', 'paused', 'canceled', 'error'],
  // checking: the session expired, or hashing: a stale cached sha1
  uploading: ['completing', 'checking', 'hashing', 'paused', 'canceled', 'error'],
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
