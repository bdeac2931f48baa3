import { Readable } from 'node:stream';
import { HttpError } from '../errors.ts';
import type { ContentRow } from '../repositories/contents.ts';
import { bodyPieces, type MemoryLease } from './body-memory.ts';
import type { ContentStore } from './content-store.ts';
import { BLOCK_SIZE } from './hashing/blocks.ts';
import { DigestHasher } from './hashing/content.ts';
import type { ChunkDigests } from './hashing/pool.ts';
import { newId } from './ids.ts';
import type { SpaceHold, UploadParts } from './upload-parts.ts';

/**
 * Reads a request body of at most `max` bytes into one buffer (`buffer`, at least `max` long, when
 * given); `overflow` throws when it has more.
 * Chunks are bounded by the chunk size, so holding one in memory is what lets the server check it
 * before any node sees it.
 */
export async function readBody(
  body: Readable,
  max: number,
  overflow: () => never,
  buffer: Buffer = Buffer.allocUnsafe(max),
  idleMs = 0,
): Promise<Buffer> {
  let filled = 0;
  for await (const data of bodyPieces(body, idleMs)) {
    if (filled + data.length > max) overflow();
    data.copy(buffer, filled);
    filled += data.length;
  }
  return buffer.subarray(0, filled);
}

/**
 * `POST /api/files`: one request carries the whole file. A body that fits in one chunk (the
 * many-small-files case) is hashed in memory on a digest thread and stored like any content; a
 * bigger one streams into part files on the nodes chunk by chunk, hashed as it passes, and is
 * published under its hash at the end. Nothing touches the app's disk either way.
 */
export class SingleUpload {
  constructor(
    private readonly parts: UploadParts,
    private readonly contents: ContentStore,
    private readonly digests: ChunkDigests,
    private readonly limits: {
      chunkSize: number;
      maxFileSize: number;
      minFreeBytes: number;
      /** A body that sends nothing this long while awaited fails (0: never). */
      idleMs?: number;
    },
  ) {}

  async store(
    body: Readable,
    declaredSha1: string | undefined,
    assertRoom: (size: number) => Promise<void>,
    bounds: {
      /** The request's length when known: the space held on the nodes for a body that streams. */
      expectedBytes?: number | null;
      /** The most the user may store (what is left of a quota): more stops the body at once. */
      maxBytes?: number;
      tooBig?: (bytes: number) => Error;
      /** Counts the bytes held in memory until a chunk's worth goes to the nodes. */
      memory?: MemoryLease;
    } = {},
  ): Promise<ContentRow> {
    const { expectedBytes = null, maxBytes = Number.POSITIVE_INFINITY, memory } = bounds;
    const chunkSize = this.limits.chunkSize;
    // Pieces as they came off the socket, until a chunk's worth: most bodies are small, so a
    // chunk-sized buffer per request would be mostly garbage (8 MiB each by default).
    let pieces: Buffer[] = [];
    let filled = 0;
    let offset = 0;
    let part: { id: string; nodeIds: string[] } | null = null;
    // Every node the part was ever sent to: a write that failed (a full disk) may have left bytes.
    let partNodes: string[] = [];
    let hold: SpaceHold | null = null;
    // A body bigger than one chunk is hashed chunk by chunk on its way to the part file (its block
    // digests on a digest thread); a smaller one is hashed whole once it has arrived.
    const hasher = new DigestHasher();

    const flush = async (data: Buffer) => {
      hasher.update(data, offset % BLOCK_SIZE === 0 ? (await this.digests.of(data)).blocks : undefined);
      if (!part) {
        const id = newId();
        const expected = Math.min(Math.max(expectedBytes ?? 0, chunkSize), this.limits.maxFileSize);
        hold = await this.parts.reserve(id, expected, this.limits.minFreeBytes);
        part = { id, nodeIds: hold.nodeIds };
        partNodes = hold.nodeIds;
      }
      part.nodeIds = await this.parts.writeTo(part.id, part.nodeIds, offset, data, { chunkSize });
      if (part.nodeIds.length === 0) {
        throw new HttpError('storage_unavailable', 'every storage node failed while storing the file');
      }
      offset += data.length;
    };

    try {
      // Leaving the loop early (a body too big) must not destroy the request: that would cut the
      // connection before the error is answered. The rest of such a body is not read (the
      // answer closes the connection: plugins/http-limits.ts).
      for await (const piece of bodyPieces(body, this.limits.idleMs ?? 0)) {
        let data = piece;
        const total = offset + filled + data.length;
        if (total > this.limits.maxFileSize) {
          throw new HttpError('file_too_large', `files may be at most ${this.limits.maxFileSize} bytes`);
        }
        if (total > maxBytes) {
          throw bounds.tooBig?.(total) ?? new HttpError('quota_exceeded', 'the storage quota is used up');
        }
        memory?.grow(data.length);
        while (filled + data.length >= chunkSize) {
          // Whole chunks go to the part file at chunk offsets, like a chunked upload's.
          const take = chunkSize - filled;
          pieces.push(data.subarray(0, take));
          await flush(Buffer.concat(pieces, chunkSize));
          memory?.shrink(chunkSize);
          data = data.subarray(take);
          pieces = [];
          filled = 0;
        }
        if (data.length > 0) {
          pieces.push(data);
          filled += data.length;
        }
      }
      if (!part) {
        // The whole file is in memory: store it like any verified content. The quota is checked,
        // locked, when the file's row is added; content stored past it is collected.
        const { digests, bytes, release } = await this.digests.content(pieces, filled);
        try {
          checkDeclared(declaredSha1, digests.sha1);
          // The same room check as a chunked upload's (ingest places it by its hash).
          this.parts.choose(digests.sha1, filled, this.limits.minFreeBytes);
          return await this.contents.ingest({
            declaredSha1: digests.sha1,
            size: filled,
            open: () => Readable.from(bytes),
            digests,
          });
        } finally {
          // Every node's write has settled when ingest does: nothing reads the bytes any more.
          release();
        }
      }
      if (filled > 0) await flush(Buffer.concat(pieces, filled));
      const stored: { id: string; nodeIds: string[] } = part;
      const digests = hasher.digests();
      checkDeclared(declaredSha1, digests.sha1);
      await assertRoom(digests.size);
      const content = await this.contents.acceptVerified(
        digests,
        (key) => this.parts.commit(stored.id, stored.nodeIds, key, digests.size),
        () => this.parts.discard(stored.id, partNodes),
      );
      (hold as SpaceHold | null)?.written();
      return content;
    } catch (error) {
      const written = part as { id: string; nodeIds: string[] } | null;
      if (written) await this.parts.discard(written.id, partNodes);
      (hold as SpaceHold | null)?.cancel();
      throw error;
    }
  }
}

function checkDeclared(declared: string | undefined, actual: string): void {
  if (declared !== undefined && declared !== actual) {
    throw new HttpError('hash_mismatch', 'the uploaded bytes do not hash to the declared sha1', {
      expected: declared,
      actual,
    });
  }
}
