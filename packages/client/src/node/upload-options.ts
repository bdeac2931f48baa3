import type { UploadOptions } from '../upload/types.ts';
import { nodeHasher, nodeHashFile } from './hash.ts';
import { nodeFileFromBytes } from './held-file.ts';

/**
 * What an upload in Node uses instead of the browser's defaults: node:crypto hashing, and Files
 * that hold a small file's bytes without copying them.
 */
export const nodeUploadOptions = {
  hasher: nodeHasher,
  hashFile: nodeHashFile,
  fileFromBytes: nodeFileFromBytes,
} satisfies Partial<UploadOptions>;
