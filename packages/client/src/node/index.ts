/** Node-only helpers: files on disk, node:crypto hashing, the CLI's config file. */
export { type ClientConfig, clearConfig, configPath, loadConfig, saveConfig } from './config.ts';
export { nodeHasher, nodeHashFile } from './hash.ts';
export { fileSourceFromPath } from './source.ts';
