/** How the viewer shows a file, or null when it can only be downloaded. */
export type PreviewKind = 'image' | 'video' | 'audio' | 'pdf' | 'text';

/** The text viewer shows at most this much of a file (a Range request), and says so. */
export const TEXT_PREVIEW_BYTES = 1024 * 1024;

const IMAGE = new Set(['png', 'jpg', 'jpeg', 'gif', 'webp', 'avif', 'bmp', 'ico']);
const VIDEO = new Set(['mp4', 'm4v', 'webm', 'ogv', 'mov']);
const AUDIO = new Set(['mp3', 'm4a', 'aac', 'ogg', 'oga', 'opus', 'wav', 'flac', 'weba']);
/**
 * Shown as text. HTML, SVG and XML are here on purpose: active content is never rendered in the
 * app's origin, but its source is worth reading.
 */
const TEXT = new Set(
  (
    'txt text log md markdown rst csv tsv json jsonl ndjson yaml yml toml ini cfg conf env properties ' +
    'xml svg html htm css scss less js mjs cjs jsx ts mts cts tsx vue svelte c h cc cpp hpp cs java kt ' +
    'kts go rs py rb php pl lua sh bash zsh fish ps1 bat sql graphql proto swift scala r m dart ex exs ' +
    'erl hs ml clj lisp el vim diff patch gitignore dockerfile makefile gradle tf nix srt vtt tex'
  ).split(' '),
);

function extension(name: string): string {
  const lower = name.toLowerCase();
  const dot = lower.lastIndexOf('.');
  // "Makefile", "Dockerfile": the whole name is the kind.
  return dot <= 0 ? lower : lower.slice(dot + 1);
}

/** By extension first (what users see), then by the type the server recorded. */
export function previewKind(file: { name: string; mime?: string | null }): PreviewKind | null {
  const ext = extension(file.name);
  if (IMAGE.has(ext)) return 'image';
  if (VIDEO.has(ext)) return 'video';
  if (AUDIO.has(ext)) return 'audio';
  if (ext === 'pdf') return 'pdf';
  if (TEXT.has(ext)) return 'text';
  const mime = file.mime ?? '';
  if (mime === 'image/svg+xml') return 'text';
  if (mime.startsWith('image/')) return 'image';
  if (mime.startsWith('video/')) return 'video';
  if (mime.startsWith('audio/')) return 'audio';
  if (mime === 'application/pdf') return 'pdf';
  if (mime.startsWith('text/') || mime === 'application/json') return 'text';
  return null;
}

/**
 * Decodes the first bytes of a file for the text viewer: UTF-8 (a character cut at the end is
 * dropped, not shown as garbage), or null when it looks binary (a NUL byte early on).
 */
export function decodeTextPreview(bytes: Uint8Array, truncated: boolean): string | null {
  if (bytes.subarray(0, 8192).includes(0)) return null;
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes, { stream: truncated });
  return text;
}
