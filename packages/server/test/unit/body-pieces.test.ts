import { PassThrough, Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HttpError } from '../../src/errors.ts';
import { bodyPieces } from '../../src/services/body-memory.ts';

const piecesOf = (count: number, size = 1024) => Array.from({ length: count }, () => Buffer.alloc(size, 1));

describe('bodyPieces', () => {
  afterEach(() => vi.restoreAllMocks());

  it('arms one idle timer per body, not one per piece', async () => {
    // A small upload arrives in dozens of socket reads; a timer, a promise and a race for each
    // was a measurable share of the app's CPU with many users uploading at once.
    const timers = vi.spyOn(globalThis, 'setTimeout');
    let bytes = 0;
    for await (const piece of bodyPieces(Readable.from(piecesOf(200), { objectMode: false }), 30_000)) {
      bytes += piece.length;
    }
    expect(bytes).toBe(200 * 1024);
    expect(timers.mock.calls.length).toBeLessThanOrEqual(1);
  });

  it('fails a body that sends nothing for the idle time, and destroys it', async () => {
    const body = new PassThrough();
    body.write(Buffer.alloc(10));
    const started = Date.now();
    const read = (async () => {
      let bytes = 0;
      for await (const piece of bodyPieces(body, 150)) bytes += piece.length;
      return bytes;
    })();
    const error = await read.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).code).toBe('bad_request');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(body.destroyed).toBe(true);
  });

  it("does not count the server's own time between pieces as the client's", async () => {
    const body = new PassThrough();
    body.write(Buffer.alloc(1024));
    let pieces = 0;
    for await (const _piece of bodyPieces(body, 100)) {
      pieces++;
      // The next piece is there at once; the server then works (writes to the nodes, hashes)
      // for longer than the idle time before it asks for it.
      if (pieces < 3) body.write(Buffer.alloc(1024));
      else body.end();
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(pieces).toBe(3);
  });

  it('keeps waiting for a client that sends within the idle time, however long the body takes', async () => {
    const body = new PassThrough();
    const writer = (async () => {
      for (const piece of piecesOf(4)) {
        await new Promise((resolve) => setTimeout(resolve, 60));
        body.write(piece);
      }
      body.end();
    })();
    let bytes = 0;
    for await (const piece of bodyPieces(body, 150)) bytes += piece.length;
    await writer;
    expect(bytes).toBe(4 * 1024);
  });
});
