export { type CreateHasherOptions, createHasher, webAssemblyAvailable } from './create.ts';
export { hashFile, hashFileWith, hashSource, pieceCount, readExact } from './hash-file.ts';
export { createJsHasher } from './js.ts';
export { proofSha1, proveChallenge } from './proof.ts';
export { webCryptoAvailable, webCryptoSha1 } from './sha1-bytes.ts';
export type {
  FileDigest,
  FileSource,
  HashBackend,
  Hasher,
  HashFileFn,
  HashFileOptions,
  IncrementalDigest,
} from './types.ts';
export { HASH_PIECE_SIZE } from './types.ts';
export { createWasmHasher } from './wasm.ts';
export {
  defaultHashWorkerCount,
  WorkerHashPool,
  type WorkerHashPoolOptions,
  type WorkerLike,
} from './worker-pool.ts';
export {
  type HashWorkerRequest,
  type HashWorkerResponse,
  type HashWorkerScope,
  type MessageEventLike,
  type PieceInput,
  type RunHashWorkerOptions,
  runHashWorker,
} from './worker-protocol.ts';
