// The work of a digest thread (pool.ts): the same functions the app's thread uses, run beside it.
import { Piscina } from 'piscina';
import { type ChunkChecksum, digestChunk } from './chunk.ts';
import { digestsOf } from './content.ts';

export type DigestTask =
  | { kind: 'chunk'; data: Uint8Array<ArrayBuffer>; checksum: ChunkChecksum | null }
  | { kind: 'content'; data: Uint8Array<ArrayBuffer> };

export interface ChunkResult {
  blocks: Uint8Array;
  /** Null when no checksum was asked for. */
  checksumOk: boolean | null;
  data: Uint8Array<ArrayBuffer>;
}

export interface ContentResult {
  sha1: string;
  blocks: Uint8Array;
  root: string;
  data: Uint8Array<ArrayBuffer>;
}

export default function digest(task: DigestTask): unknown {
  if (task.kind === 'content') {
    const { sha1, blocks, root } = digestsOf(task.data);
    // Its own bytes: a view into a shared pool would send the whole pool along.
    return handBack({ sha1, blocks: new Uint8Array(blocks.hashes), root, data: task.data });
  }
  const { blocks, checksumOk } = digestChunk(task.data, task.checksum);
  return handBack({ blocks: new Uint8Array(blocks), checksumOk, data: task.data });
}

/** The result, with the bytes' buffer moved back (not copied) to the app's thread. */
function handBack<T extends { data: Uint8Array<ArrayBuffer> }>(value: T): unknown {
  const transferable = {
    get [Piscina.transferableSymbol]() {
      return [value.data.buffer];
    },
    get [Piscina.valueSymbol]() {
      return value;
    },
  };
  // Piscina's types want its own Transferable class; any object with the two symbols is one.
  return Piscina.move(transferable as unknown as Parameters<typeof Piscina.move>[0]);
}
