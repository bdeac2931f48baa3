import type { FileSource } from '../hashing/types.ts';

/** Wraps a browser `File` or `Blob` (name/lastModified taken from a File). */
export function fileSourceFromBlob(blob: Blob, name?: string): FileSource {
  const file = blob as Blob & { name?: string; lastModified?: number };
  return {
    name: name ?? file.name ?? 'blob',
    size: blob.size,
    ...(file.lastModified !== undefined ? { lastModified: file.lastModified } : {}),
    ...(blob.type ? { type: blob.type } : {}),
    blob,
    slice: async (start, end) => new Uint8Array(await blob.slice(start, end).arrayBuffer()),
  };
}

/** Bytes already in memory (tests, generated content). */
export function fileSourceFromBytes(bytes: Uint8Array, name: string, lastModified?: number): FileSource {
  return {
    name,
    size: bytes.byteLength,
    ...(lastModified !== undefined ? { lastModified } : {}),
    slice: async (start, end) => bytes.slice(start, Math.min(end, bytes.byteLength)),
  };
}
