export { SmallFileBatcher, type SmallFileBatcherOptions } from './batcher.ts';
export { FolderIndex, type ListFolder } from './existing.ts';
export { Limiter } from './limiter.ts';
export {
  bytesOfChunks,
  type ChunkRange,
  chunkCountFor,
  chunkRange,
  missingChunks,
} from './plan.ts';
export { type ProgressView, UploadProgress } from './progress.ts';
export {
  type AddOptions,
  type QueueTotals,
  totalsOf,
  UploadQueue,
  type UploadQueueEvents,
  type UploadQueueOptions,
} from './queue.ts';
export { fingerprint, MemoryResumeStore, type ResumeEntry, type ResumeStore } from './resume.ts';
export {
  DEFAULT_RETRY_DELAYS,
  isRetryable,
  type RetryContext,
  retryDelay,
  type Sleep,
  sleep,
  type WithRetryOptions,
  withRetry,
} from './retry.ts';
export { fileSourceFromBlob, fileSourceFromBytes } from './source.ts';
export { etaSeconds, SpeedMeter, TransferRate } from './speed.ts';
export { ACTIVE_STATES, canTransition, FINAL_STATES, type UploadState } from './state.ts';
export {
  DEFAULT_SMALL_FILE_LIMIT,
  DEFAULT_SPECULATIVE_THRESHOLD,
  DEFAULT_VERIFY_TIMEOUT_MS,
  type NameTaken,
  type NameTakenChoice,
  type NameTakenHandler,
  type RetryInfo,
  type UploadErrorInfo,
  type UploadEvents,
  type UploadOptions,
  type UploadRoute,
  type UploadSnapshot,
} from './types.ts';
export { Upload } from './upload.ts';
