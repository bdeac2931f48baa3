import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import pLimit from 'p-limit';
import { HttpError } from '../errors.ts';
import type { ContentRow } from '../repositories/contents.ts';
import type { ContentStore } from './content-store.ts';
import { newId } from './ids.ts';

/** Longest side of a thumbnail, in pixels: enough for a grid tile on a high-density screen. */
export const THUMBNAIL_PX = 320;
/** Image files above this are not thumbnailed (their bytes are read into memory to decode). */
const MAX_SOURCE_BYTES = 64 * 1024 * 1024;
/** A decompression bomb stops here, not at the server's memory. */
const MAX_SOURCE_PIXELS = 100_000_000;

/** Raster formats libvips decodes safely. SVG is left out on purpose: it is active content. */
const THUMBNAIL_TYPES = new Set([
  'image/jpeg',
  'image/png',
  'image/gif',
  'image/webp',
  'image/avif',
  'image/tiff',
  'image/heic',
  'image/heif',
  'image/bmp',
]);

type Sharp = typeof import('sharp')['default'];
let sharpLoaded: Promise<Sharp> | undefined;

/**
 * sharp (libvips) is loaded on the first thumbnail, not at start: an app that never makes one
 * keeps its heap, which every garbage collection marks, smaller.
 */
function loadSharp(): Promise<Sharp> {
  sharpLoaded ??= import('sharp').then(({ default: sharp }) => {
    // One decode at a time, one libvips thread each, no libvips cache: a folder of photos opened
    // in the grid must not take every core and a gigabyte of memory from uploads and downloads.
    sharp.concurrency(1);
    sharp.cache(false);
    return sharp;
  });
  return sharpLoaded;
}

export function canThumbnail(mime: string | null): boolean {
  return mime !== null && THUMBNAIL_TYPES.has(mime);
}

/**
 * Thumbnails of image contents, made on first request and cached on the app's disk by content
 * SHA-1: every user who stores the same bytes shares one, and it is made once per instance. A
 * content that cannot be decoded is remembered too, so it is not tried again on every request.
 */
export class ThumbnailService {
  private readonly limit = pLimit(1);
  private readonly inFlight = new Map<string, Promise<Buffer | null>>();

  constructor(
    private readonly dir: string,
    private readonly contents: ContentStore,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** The WebP thumbnail of an image content; `no_thumbnail`-style 404 when there is none. */
  async get(content: ContentRow, mime: string | null): Promise<Buffer> {
    if (!canThumbnail(mime)) throw new HttpError('not_found', 'this type of file has no thumbnail');
    if (Number(content.size) > MAX_SOURCE_BYTES)
      throw new HttpError('not_found', 'this image is too large for a thumbnail');
    const cached = await this.cached(content.sha1);
    if (cached === 'failed') throw new HttpError('not_found', 'this image could not be decoded');
    if (cached) return cached;
    let job = this.inFlight.get(content.sha1);
    if (!job) {
      job = this.limit(() => this.make(content)).finally(() => this.inFlight.delete(content.sha1));
      this.inFlight.set(content.sha1, job);
    }
    const made = await job;
    if (!made) throw new HttpError('not_found', 'this image could not be decoded');
    return made;
  }

  private file(sha1: string, ext: string): string {
    return path.join(this.dir, sha1.slice(0, 2), `${sha1}.${ext}`);
  }

  private async cached(sha1: string): Promise<Buffer | 'failed' | null> {
    try {
      return await readFile(this.file(sha1, 'webp'));
    } catch {
      try {
        await readFile(this.file(sha1, 'failed'));
        return 'failed';
      } catch {
        return null;
      }
    }
  }

  private async make(content: ContentRow): Promise<Buffer | null> {
    const cached = await this.cached(content.sha1);
    if (cached) return cached === 'failed' ? null : cached;
    // Outside the decode's try: a libvips that does not load is the server's fault, not the image's.
    const sharp = await loadSharp();
    // Verified bytes, as a download gets them.
    const stream = await this.contents.open(content);
    const parts: Buffer[] = [];
    for await (const part of stream) parts.push(part as Buffer);
    let thumbnail: Buffer | null = null;
    try {
      thumbnail = await sharp(Buffer.concat(parts), { limitInputPixels: MAX_SOURCE_PIXELS, animated: false })
        .rotate() // honour EXIF orientation, as photo viewers do
        .resize(THUMBNAIL_PX, THUMBNAIL_PX, { fit: 'inside', withoutEnlargement: true })
        .webp({ quality: 75 })
        .toBuffer();
    } catch (err) {
      this.log.info({ err, sha1: content.sha1 }, 'no thumbnail: the image did not decode');
    }
    await this.store(content.sha1, thumbnail);
    return thumbnail;
  }

  /** Written under a temporary name and renamed: a reader never sees half a file. */
  private async store(sha1: string, thumbnail: Buffer | null): Promise<void> {
    const target = this.file(sha1, thumbnail ? 'webp' : 'failed');
    await mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}.${newId()}.tmp`;
    await writeFile(tmp, thumbnail ?? '');
    await rename(tmp, target);
  }
}
