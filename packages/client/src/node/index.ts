/** Node-only helpers: files on disk, node:crypto hashing, the CLI's config file, a fetch for byte bodies. */
export { type ClientConfig, clearConfig, configPath, loadConfig, saveConfig } from './config.ts';
export { createNodeFetch, nodeFetch } from './fetch.ts';
export { nodeHasher, nodeHashFile } from './hash.ts';
export { nodeFileFromBytes } from './held-file.ts';
export { fileSourceFromPath } from './source.ts';
export { nodeUploadOptions } from './upload-options.ts';
