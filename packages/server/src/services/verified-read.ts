import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import type { ByteRange } from '../storage/types.ts';
import { BlockHasher, type BlockTable, blockDigest, blockHash } from './hashing/blocks.ts';

/** What a verified read needs from the cluster: the replicas of one content, in read order. */
export interface ReplicaSource {
  /**
   * Opens `range` on the first replica, in read order, that `usable` allows and that this read has
   * not lost (missing ones are marked, failing nodes reported, and both left out from then on);
   * rejects with an HttpError when none is left.
   */
  openFirst(
    range: ByteRange,
    usable: (index: number) => boolean,
  ): Promise<{ stream: Readable; index: number }>;
  /**
   * The replica's bytes are wrong or short somewhere: it is marked `corrupt` (repair replaces it).
   * Its other blocks may still be good, and a read may still take them (each is verified).
   */
  markCorrupt(index: number): Promise<void>;
  /** The replica failed while delivering (its node, or its object vanished): this read leaves it. */
  lost(index: number, error: unknown): void;
  nodeName(index: number): string | undefined;
  log: FastifyBaseLogger;
}

export interface VerifiedContent {
  sha1: string;
  size: number;
}

/**
 * Opens `range` (or the whole content) so that no byte leaves before the block holding it matched
 * its recorded SHA-256. The read covers whole blocks, from the block holding the first wanted byte
 * to the block holding the last; each block is collected (the only buffering: one block), checked,
 * then trimmed to the range and emitted. A block that fails its hash or comes up short marks that
 * replica `corrupt`, and the same block is read from another replica, any replica that has not
 * failed that very block: two copies damaged in different places still make one good read, since
 * every block is taken from a copy that has it right. A node that fails mid-read leaves this read.
 * When no replica has a good copy of a block the stream errors, so an HTTP response is cut instead
 * of completed. One SHA-256 pass per block is the whole cost: the table was computed by the server
 * from bytes whose SHA-1 it checked (at upload, or from a replica that matched it), so bytes that
 * match the table are the content, and a whole read needs no second, SHA-1 pass.
 *
 * The first block is read and verified before this resolves, so "no good copy of where the range
 * starts" is still an error the caller can turn into a status code (no header has gone out yet).
 */
export async function openVerified(
  source: ReplicaSource,
  content: VerifiedContent,
  table: BlockTable,
  range?: ByteRange,
): Promise<Readable> {
  const size = Number(content.size);
  if (size === 0) return Readable.from([]);
  const want = { start: range?.start ?? 0, end: Math.min(range?.end ?? size - 1, size - 1) };
  const blockSize = table.blockSize;
  const firstBlock = Math.floor(want.start / blockSize);
  const lastBlock = Math.floor(want.end / blockSize);
  const readEnd = Math.min((lastBlock + 1) * blockSize, size) - 1;

  let { stream: current, index: at } = await source.openFirst(
    { start: firstBlock * blockSize, end: readEnd },
    () => true,
  );

  async function* pump(): AsyncGenerator<Buffer> {
    try {
      yield* verifiedBlocks();
    } finally {
      current.destroy();
    }
  }

  async function* verifiedBlocks(): AsyncGenerator<Buffer> {
    let reader = new BlockReader(current);
    let block = firstBlock;
    // The replicas whose copy of `block` failed its hash or came up short.
    let failedHere = new Set<number>();
    while (block <= lastBlock) {
      const blockStart = block * blockSize;
      const length = Math.min(blockSize, size - blockStart);
      let bytes: Buffer | null = null;
      let failure: unknown = null;
      try {
        bytes = await reader.take(length);
      } catch (error) {
        failure = error;
      }
      if (bytes && bytes.length === length && blockDigest(bytes).equals(blockHash(table, block))) {
        const from = Math.max(want.start - blockStart, 0);
        const to = Math.min(want.end - blockStart + 1, length);
        yield from === 0 && to === length ? bytes : bytes.subarray(from, to);
        block++;
        failedHere = new Set();
        continue;
      }
      if (failure === null) {
        failure = new Error(
          bytes && bytes.length < length
            ? `object ended ${length - bytes.length} bytes short in block ${block}`
            : `block ${block} does not match its hash`,
        );
        failedHere.add(at);
        await source.markCorrupt(at);
      } else {
        source.lost(at, failure);
      }
      current.destroy();
      source.log.warn(
        { node: source.nodeName(at), sha1: content.sha1, at: blockStart, err: failure },
        'replica failed mid-read, resuming from the next',
      );
      // Rejects when no replica is left: the stream errors with nothing of this block sent.
      const tried = failedHere;
      const next = await source.openFirst({ start: blockStart, end: readEnd }, (index) => !tried.has(index));
      current = next.stream;
      at = next.index;
      reader = new BlockReader(current);
    }
  }

  const blocks = pump();
  const head = await blocks.next();
  async function* all(): AsyncGenerator<Buffer> {
    if (head.done) return;
    yield head.value;
    yield* blocks;
  }
  // One block per read keeps memory near one block in the generator plus one in the buffer.
  const out = Readable.from(all(), { objectMode: false, highWaterMark: blockSize });
  // A consumer that never reads still releases the open handle.
  out.once('close', () => current.destroy());
  return out;
}

/**
 * Hashes a whole replica, from the first usable one on, into a block table: for content stored
 * before block tables existed. Only bytes whose size and SHA-1 match the content's go into the
 * table; a replica that fails the check is marked `corrupt` and the next one is hashed.
 */
export async function hashFirstGoodReplica(
  source: ReplicaSource,
  content: VerifiedContent,
  blockSize: number,
): Promise<BlockTable> {
  const size = Number(content.size);
  for (let from = 0; ; ) {
    const { stream, index } = await source.openFirst(
      { start: 0, end: Math.max(size - 1, 0) },
      (i) => i >= from,
    );
    from = index + 1;
    const sha1 = createHash('sha1');
    const blocks = new BlockHasher(blockSize);
    let seen = 0;
    try {
      for await (const chunk of stream) {
        const buf = chunk as Buffer;
        seen += buf.length;
        sha1.update(buf);
        blocks.update(buf);
      }
    } catch (error) {
      source.lost(index, error);
      source.log.warn(
        { node: source.nodeName(index), sha1: content.sha1, err: error },
        'replica read failed',
      );
      continue;
    } finally {
      stream.destroy();
    }
    if (seen === size && sha1.digest('hex') === content.sha1) return blocks.table();
    source.log.warn({ node: source.nodeName(index), sha1: content.sha1 }, 'replica failed verification');
    await source.markCorrupt(index);
  }
}

/** Cuts a byte stream into pieces of exactly the asked length, whatever sizes it arrives in. */
class BlockReader {
  private readonly chunks: AsyncIterator<Buffer>;
  private leftover: Buffer | null = null;

  constructor(stream: Readable) {
    this.chunks = stream[Symbol.asyncIterator]();
  }

  /** `length` bytes, or fewer when the stream ended first. */
  async take(length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      let chunk = this.leftover;
      this.leftover = null;
      if (!chunk) {
        const next = await this.chunks.next();
        if (next.done) break;
        chunk = next.value;
      }
      const n = Math.min(length - filled, chunk.length);
      chunk.copy(out, filled, 0, n);
      filled += n;
      if (n < chunk.length) this.leftover = chunk.subarray(n);
    }
    return filled === length ? out : out.subarray(0, filled);
  }
}
