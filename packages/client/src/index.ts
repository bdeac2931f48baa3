/**
 * @dfs/client — the framework-free client core (browser, web worker and Node safe).
 * Node-only helpers (files on disk, node:crypto hashing, config, CLI) live in `@dfs/client/node`.
 */
export {
  type ChunkBody,
  type ChunkChecksum,
  type CompleteUploadOptions,
  DfsApi,
  type DfsApiOptions,
  type DownloadOptions,
  isRestoreStarted,
  type PutChunkOptions,
  type RequestOptions,
  type RestoreAnswer,
  type UploadSimpleOptions,
  type UploadTransport,
  type WaitForJobOptions,
} from './api.ts';
export { Emitter, type EventMap } from './emitter.ts';
export { ApiError, CanceledError, HashWorkerError, isAbortError, NetworkError } from './errors.ts';
export * from './hashing/index.ts';
export * from './upload/index.ts';
export { bytesToHex, crc32cDigestHeader, formatBytes, hexToBase64 } from './util/bytes.ts';
