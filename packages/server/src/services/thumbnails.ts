import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { access, constants, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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

/**
 * Videos get a poster frame (ffmpeg) and PDFs their first page (pdftoppm, from poppler-utils).
 * Both are outside programs: a machine without them serves these files without thumbnails.
 */
const VIDEO_TYPES = new Set([
  'video/mp4',
  'video/x-m4v',
  'video/quicktime',
  'video/webm',
  'video/x-matroska',
  'video/ogg',
  'video/x-msvideo',
  'video/mpeg',
]);
const PDF_TYPE = 'application/pdf';
/**
 * A video or PDF is copied (verified) to a temporary file first: an MP4 whose index sits at its
 * end, and every PDF, can only be read with seeking. Larger files get no thumbnail.
 */
const MAX_DOCUMENT_BYTES = 1024 * 1024 * 1024;
/** A tool that runs longer (a hostile or pathological file) is killed, and the file has no thumbnail. */
const TOOL_TIMEOUT_MS = 30_000;
/** The frame or page a tool writes is at most 640 px a side: anything much larger is not it. */
const MAX_TOOL_OUTPUT = 32 * 1024 * 1024;
/** The side the tools render at: twice the thumbnail, so the downscale stays sharp. */
const RENDER_PX = THUMBNAIL_PX * 2;

/** A program the thumbnail needs is not installed: not the file's fault, so not remembered. */
class ToolMissing extends Error {}

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

type SourceKind = 'image' | 'video' | 'pdf';

function sourceKind(mime: string | null): SourceKind | null {
  if (mime === null) return null;
  if (THUMBNAIL_TYPES.has(mime)) return 'image';
  if (VIDEO_TYPES.has(mime)) return 'video';
  if (mime === PDF_TYPE) return 'pdf';
  return null;
}

export function canThumbnail(mime: string | null): boolean {
  return sourceKind(mime) !== null;
}

/**
 * Runs a program with no shell, a time limit and a cap on what it prints; resolves with its
 * standard output when it exits 0, rejects otherwise (ToolMissing when it is not installed).
 */
function runTool(program: string, args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    let failure: Error | null = null;
    const stop = (why: Error) => {
      failure ??= why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(
      () => stop(new Error(`${program} ran over ${TOOL_TIMEOUT_MS} ms`)),
      TOOL_TIMEOUT_MS,
    );
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > MAX_TOOL_OUTPUT) stop(new Error(`${program} wrote over ${MAX_TOOL_OUTPUT} bytes`));
      else out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (err.length < 2000) err += chunk.toString();
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(e.code === 'ENOENT' ? new ToolMissing(`${program} is not installed`) : e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (failure) reject(failure);
      else if (code !== 0) reject(new Error(`${program} exited with ${code}: ${err.trim()}`));
      else resolve(Buffer.concat(out));
    });
  });
}

/**
 * Thumbnails of image contents, made on first request and cached on the app's disk by content
 * SHA-1: every user who stores the same bytes shares one, and it is made once per instance. A
 * content that cannot be decoded is remembered too, so it is not tried again on every request.
 */
export class ThumbnailService {
  private readonly limit = pLimit(1);
  private readonly inFlight = new Map<string, Promise<Buffer | null | 'no-tool'>>();
  private tmpSwept = false;
  /** Tools found missing, logged once each. */
  private readonly missing = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly contents: ContentStore,
    private readonly log: FastifyBaseLogger,
  ) {}

  /**
   * The WebP thumbnail of an image, a video (a poster frame) or a PDF (its first page);
   * a 404 when there is none.
   */
  async get(content: ContentRow, mime: string | null): Promise<Buffer> {
    const kind = sourceKind(mime);
    if (!kind) throw new HttpError('not_found', 'this type of file has no thumbnail');
    if (Number(content.size) > (kind === 'image' ? MAX_SOURCE_BYTES : MAX_DOCUMENT_BYTES))
      throw new HttpError('not_found', 'this file is too large for a thumbnail');
    const cached = await this.cached(content.sha1);
    if (cached === 'failed') throw new HttpError('not_found', 'this file could not be decoded');
    if (cached) return cached;
    let job = this.inFlight.get(content.sha1);
    if (!job) {
      job = this.limit(() => this.make(content, kind)).finally(() => this.inFlight.delete(content.sha1));
      this.inFlight.set(content.sha1, job);
    }
    const made = await job;
    if (made === 'no-tool')
      throw new HttpError('not_found', 'this server cannot make thumbnails of this type');
    if (!made) throw new HttpError('not_found', 'this file could not be decoded');
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

  private async make(content: ContentRow, kind: SourceKind): Promise<Buffer | null | 'no-tool'> {
    const cached = await this.cached(content.sha1);
    if (cached) return cached === 'failed' ? null : cached;
    // Outside the decode's try: a libvips that does not load is the server's fault, not the image's.
    const sharp = await loadSharp();
    let source: Buffer;
    try {
      source = kind === 'image' ? await this.read(content) : await this.render(content, kind);
    } catch (err) {
      if (!(err instanceof ToolMissing)) throw err;
      // Not remembered: once the program is installed, the same file gets its thumbnail.
      if (!this.missing.has(err.message)) {
        this.missing.add(err.message);
        this.log.warn(`no ${kind} thumbnails: ${err.message}`);
      }
      return 'no-tool';
    }
    let thumbnail: Buffer | null = null;
    try {
      thumbnail =
        source.length === 0
          ? null
          : await sharp(source, { limitInputPixels: MAX_SOURCE_PIXELS, animated: false })
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

  /** The whole content, verified as a download gets it. */
  private async read(content: ContentRow): Promise<Buffer> {
    const stream = await this.contents.open(content);
    const parts: Buffer[] = [];
    for await (const part of stream) parts.push(part as Buffer);
    return Buffer.concat(parts);
  }

  /**
   * A PNG of a video's poster frame or a PDF's first page, from the verified bytes copied to a
   * temporary file; empty when the tool cannot read the file (it is then remembered as failed).
   */
  private async render(content: ContentRow, kind: 'video' | 'pdf'): Promise<Buffer> {
    const work = path.join(this.dir, 'tmp');
    // Copies left by an instance that stopped mid-render go on the first render after a start
    // (renders run one at a time, so none of this instance's is under way).
    if (!this.tmpSwept) {
      this.tmpSwept = true;
      await rm(work, { recursive: true, force: true });
    }
    await mkdir(work, { recursive: true });
    const program = kind === 'video' ? 'ffmpeg' : 'pdftoppm';
    // Looked up before a gigabyte is copied for a program that is not there.
    if (!(await onPath(program))) throw new ToolMissing(`${program} is not installed`);
    const input = path.join(work, `${newId()}.${kind === 'pdf' ? 'pdf' : 'video'}`);
    try {
      // Verified bytes, as a download gets them: a damaged copy fails here, not in the tool.
      await pipeline((await this.contents.open(content)) as Readable, createWriteStream(input));
      try {
        return await runTool(program, kind === 'video' ? ffmpegArgs(input) : pdftoppmArgs(input));
      } catch (err) {
        if (err instanceof ToolMissing) throw err;
        this.log.info({ err, sha1: content.sha1 }, `no thumbnail: the ${kind} did not render`);
        return Buffer.alloc(0);
      }
    } finally {
      await rm(input, { force: true });
    }
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

/**
 * One representative frame of the first few seconds (ffmpeg's `thumbnail` filter skips the black
 * or faded opening frames), scaled down, as PNG on standard output. No audio, subtitles or data
 * streams are decoded, and one thread does the work.
 */
function ffmpegArgs(input: string): string[] {
  return [
    ...['-hide_banner', '-loglevel', 'error', '-nostdin', '-threads', '1'],
    ...['-i', input, '-an', '-sn', '-dn', '-t', '10'],
    ...['-vf', `thumbnail=n=24,scale=${RENDER_PX}:${RENDER_PX}:force_original_aspect_ratio=decrease`],
    ...['-frames:v', '1', '-f', 'image2pipe', '-c:v', 'png', 'pipe:1'],
  ];
}

/** The first page only, fitted into RENDER_PX, as PNG on standard output. */
function pdftoppmArgs(input: string): string[] {
  return ['-f', '1', '-l', '1', '-singlefile', '-png', '-scale-to', String(RENDER_PX), input];
}

/** Whether a program is on PATH (where spawn looks for it), looked up at every render. */
async function onPath(program: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      await access(path.join(dir, program), constants.X_OK);
      return true;
    } catch {
      // not in this one
    }
  }
  return false;
}
