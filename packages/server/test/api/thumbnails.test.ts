import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

async function cachedFiles(dataDir: string): Promise<string[]> {
  const root = path.join(dataDir, 'thumbnails');
  const out: string[] = [];
  for (const sub of await readdir(root).catch(() => [] as string[])) {
    for (const f of await readdir(path.join(root, sub))) out.push(f);
  }
  return out.sort();
}

describe('thumbnails', () => {
  let t: TestApp;
  let alice: Awaited<ReturnType<TestApp['user']>>;
  let bob: Awaited<ReturnType<TestApp['user']>>;
  let photo: Buffer;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) });
    alice = await t.user('alice');
    bob = await t.user('bob');
    photo = await sharp({ create: { width: 800, height: 600, channels: 3, background: '#3366cc' } })
      .jpeg()
      .toBuffer();
  });
  afterAll(() => t.close());

  const thumb = (id: string, who = alice, headers: Record<string, string> = {}) =>
    t.app.inject({ url: `/api/files/${id}/thumbnail`, headers: { ...who.headers, ...headers } });

  it('makes a small WebP once per content and shares it between users who store the bytes', async () => {
    const mine = await uploader(t, alice.headers).upload(photo, 'holiday.jpg');
    const theirs = await uploader(t, bob.headers).upload(photo, 'copy of holiday.JPG');
    // Two at once: one decode.
    const [a, b] = await Promise.all([thumb(mine.id), thumb(mine.id)]);
    expect(a.statusCode).toBe(200);
    expect(a.headers['content-type']).toBe('image/webp');
    expect(a.rawPayload.equals(b.rawPayload)).toBe(true);
    const meta = await sharp(a.rawPayload).metadata();
    expect(meta).toMatchObject({ format: 'webp', width: 320, height: 240 });
    expect(a.rawPayload.length).toBeLessThan(photo.length);

    const other = await thumb(theirs.id, bob);
    expect(other.rawPayload.equals(a.rawPayload)).toBe(true);
    const sha1 = (await t.app.inject({ url: `/api/files/${mine.id}`, headers: alice.headers })).json().file
      .sha1;
    expect(await cachedFiles(t.dataDir)).toEqual([`${sha1}.webp`]);

    // Cached by the browser too: the bytes behind a file never change.
    expect(a.headers['cache-control']).toContain('immutable');
    expect((await thumb(mine.id, alice, { 'if-none-match': String(a.headers.etag) })).statusCode).toBe(304);
    // Not someone else's file.
    expect((await thumb(mine.id, bob)).statusCode).toBe(404);
  });

  it('answers 404 for files that are not images, and remembers images that do not decode', async () => {
    const text = await uploader(t, alice.headers).upload(random(100), 'notes.txt');
    expect((await thumb(text.id)).statusCode).toBe(404);
    const broken = await uploader(t, alice.headers).upload(random(3000), 'broken.png');
    const res = await thumb(broken.id);
    expect(res.statusCode).toBe(404);
    expect(res.json().error.message).toContain('could not be decoded');
    expect((await cachedFiles(t.dataDir)).filter((f) => f.endsWith('.failed'))).toHaveLength(1);
    expect((await thumb(broken.id)).statusCode).toBe(404);
  });

  it('makes a poster frame of a video and the first page of a PDF', async () => {
    const video = await uploader(t, alice.headers).upload(testVideo('mp4'), 'clip.mp4');
    const res = await thumb(video.id);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe('image/webp');
    const meta = await sharp(res.rawPayload).metadata();
    expect(meta).toMatchObject({ format: 'webp', width: 320, height: 240 });
    // ffmpeg's test pattern: colour bars, not one flat colour.
    const { channels } = await sharp(res.rawPayload).stats();
    expect(Math.max(...channels.map((c) => c.stdev))).toBeGreaterThan(30);

    const webm = await uploader(t, alice.headers).upload(testVideo('webm'), 'clip.webm');
    expect((await thumb(webm.id)).statusCode).toBe(200);

    const doc = await uploader(t, alice.headers).upload(redPdf(), 'letter.pdf');
    const page = await thumb(doc.id);
    expect(page.statusCode, page.body).toBe(200);
    expect(await sharp(page.rawPayload).metadata()).toMatchObject({ width: 320, height: 160 });
    const [r, g, b] = (await sharp(page.rawPayload).stats()).channels;
    expect(r!.mean).toBeGreaterThan(200);
    expect(g!.mean).toBeLessThan(60);
    expect(b!.mean).toBeLessThan(60);
    // The temporary copies the tools read are gone.
    expect(await readdir(path.join(t.dataDir, 'thumbnails', 'tmp'))).toEqual([]);
  });

  it('remembers a video or PDF that does not decode', async () => {
    for (const name of ['noise.mp4', 'noise.pdf']) {
      const file = await uploader(t, alice.headers).upload(random(5000), name);
      const before = (await cachedFiles(t.dataDir)).filter((f) => f.endsWith('.failed')).length;
      const res = await thumb(file.id);
      expect(res.statusCode).toBe(404);
      expect(res.json().error.message).toContain('could not be decoded');
      expect((await cachedFiles(t.dataDir)).filter((f) => f.endsWith('.failed'))).toHaveLength(before + 1);
    }
  });

  it('without ffmpeg or pdftoppm answers 404, and makes the thumbnail once the program is there', async () => {
    const video = await uploader(t, alice.headers).upload(testVideo('mp4', 'red'), 'red.mp4');
    const empty = mkdtempSync(path.join(tmpdir(), 'dfs-no-tools-'));
    const saved = process.env.PATH;
    // The programs are looked up on PATH when they are run: an empty one is a machine without them.
    process.env.PATH = empty;
    let res: Awaited<ReturnType<typeof thumb>>;
    try {
      res = await thumb(video.id);
    } finally {
      process.env.PATH = saved;
      rmSync(empty, { recursive: true, force: true });
    }
    expect(res.statusCode).toBe(404);
    expect(res.json().error.message).toContain('cannot make thumbnails');
    const later = await thumb(video.id);
    expect(later.statusCode).toBe(200);
    const [r] = (await sharp(later.rawPayload).stats()).channels;
    expect(r!.mean).toBeGreaterThan(200);
  });
});

/** A one-second video made by ffmpeg: its test pattern, or one flat colour. */
function testVideo(format: 'mp4' | 'webm', colour?: string): Buffer {
  const dir = mkdtempSync(path.join(tmpdir(), 'dfs-video-'));
  const out = path.join(dir, `clip.${format}`);
  try {
    const source = colour
      ? `color=c=${colour}:size=320x240:rate=10:duration=1`
      : 'testsrc=size=320x240:rate=10:duration=1';
    const codec =
      format === 'mp4' ? ['-c:v', 'libx264', '-pix_fmt', 'yuv420p'] : ['-c:v', 'libvpx', '-b:v', '200k'];
    // No +faststart: the MP4's index is written at its end, as most cameras and phones do.
    execFileSync('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      source,
      ...codec,
      out,
    ]);
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A one-page PDF, 200 × 100 pt, painted red, with the byte offsets its cross-reference table needs. */
function redPdf(): Buffer {
  const paint = '1 0 0 rg 0 0 200 100 re f';
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R >>',
    `<< /Length ${paint.length} >>\nstream\n${paint}\nendstream`,
  ];
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const o of offsets) out += `${String(o).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}
