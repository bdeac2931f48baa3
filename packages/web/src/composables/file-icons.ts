import {
  ArchiveOutline,
  CodeSlashOutline,
  DocumentOutline,
  DocumentTextOutline,
  FolderOutline,
  ImageOutline,
  MusicalNotesOutline,
  VideocamOutline,
} from '@vicons/ionicons5';
import type { Component } from 'vue';
import { previewKind } from './preview.ts';

const ARCHIVE = new Set(['zip', '7z', 'rar', 'tar', 'gz', 'tgz', 'bz2', 'xz', 'zst', 'iso', 'dmg']);
const CODE = new Set([
  'js',
  'mjs',
  'ts',
  'tsx',
  'jsx',
  'vue',
  'py',
  'go',
  'rs',
  'java',
  'c',
  'h',
  'cpp',
  'cs',
  'rb',
  'php',
  'sh',
  'json',
  'yaml',
  'yml',
  'toml',
  'html',
  'css',
  'sql',
  'xml',
  'svg',
]);
/**
 * Files the server makes thumbnails of (by extension, as users name them): raster images, videos
 * (a poster frame) and PDFs (the first page). A server without the tools answers 404 and the
 * grid shows the icon.
 */
const THUMBNAILED = new Set(
  'jpg jpeg png gif webp avif tif tiff bmp mp4 m4v mov webm mkv ogv avi mpg mpeg pdf'.split(' '),
);

function ext(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
}

/** An icon that says what kind of file this is, where no thumbnail does. */
export function fileIcon(file: { kind: 'file' | 'folder'; name: string; mime?: string | null }): Component {
  if (file.kind === 'folder') return FolderOutline;
  const e = ext(file.name);
  if (ARCHIVE.has(e)) return ArchiveOutline;
  if (CODE.has(e)) return CodeSlashOutline;
  switch (previewKind(file)) {
    case 'image':
      return ImageOutline;
    case 'video':
      return VideocamOutline;
    case 'audio':
      return MusicalNotesOutline;
    case 'pdf':
    case 'text':
      return DocumentTextOutline;
    default:
      return DocumentOutline;
  }
}

export function hasThumbnail(file: { kind: 'file' | 'folder'; name: string }): boolean {
  return file.kind === 'file' && THUMBNAILED.has(ext(file.name));
}

/**
 * Attributes of an icon that only decorates (its button or row says the same in words): Naive's
 * NIcon renders `role="img"` without a name, which screen readers announce as an unnamed image.
 */
export const DECORATIVE = { 'aria-hidden': 'true' } as const;
