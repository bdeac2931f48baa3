import { DigestHasher, type Digests } from './content.ts';

export type UploadDigests = Digests;

/** A chunk's bytes, with their block digests when it starts on a block boundary. */
export interface ChunkBytes {
  data: Buffer;
  blocks?: Uint8Array | undefined;
}

interface State {
  epoch: number;
  /** Chunks `0..next-1` have been hashed. */
  next: number;
  hasher: DigestHasher;
  /** Chunks that arrived ahead of `next`, held until the gap before them fills. */
  pending: Map<number, ChunkBytes>;
  /** Set by `finish`: from then on it alone feeds the state. */
  finishing: boolean;
}

/**
 * The whole-file hashes of unfinished uploads, computed in this process as their chunks pass
 * through it, in order (a chunk that overtakes another waits in memory, within a byte budget).
 *
 * node:crypto hashes about 4× faster than hash-wasm here but cannot serialize its state, so this
 * is a cache, not the record: when an upload's chunks went through another app instance, or this
 * one restarted, `finish` reads the chunks the state lacks back from a node. That is the
 * exception; with one instance (or an upstream that keeps an upload on one instance) `complete`
 * reads nothing back.
 */
export class UploadHashes {
  private readonly states = new Map<string, State>();
  private pendingBytes = 0;

  constructor(
    private readonly maxPendingBytes: number,
    private readonly maxStates = 10_000,
  ) {}

  /** Feeds chunk `index` of an upload whose node set is at `epoch` (a new epoch starts over). */
  /** Returns true when it keeps `data` (an early chunk held for later): the caller must not reuse it. */
  offer(uploadId: string, epoch: number, index: number, chunk: ChunkBytes): boolean {
    let state = this.states.get(uploadId);
    if (state?.finishing) return false;
    if (state && state.epoch !== epoch) {
      this.forget(uploadId);
      state = undefined;
    }
    if (!state) state = this.start(uploadId, epoch);
    else {
      // Most recently used last, so eviction takes the longest idle.
      this.states.delete(uploadId);
      this.states.set(uploadId, state);
    }
    if (index < state.next || state.pending.has(index)) return false;
    if (index === state.next) {
      consume(state, chunk);
      this.drain(state);
      return false;
    }
    if (this.pendingBytes + chunk.data.length <= this.maxPendingBytes) {
      state.pending.set(index, chunk);
      this.pendingBytes += chunk.data.length;
      return true;
    }
    return false;
  }

  /**
   * The digests of chunks `0..count-1`: what this process hashed already, plus `read(i)` for every
   * chunk it did not see. Returns how many chunks had to be read back, for the log.
   */
  async finish(
    uploadId: string,
    epoch: number,
    count: number,
    read: (index: number) => Promise<ChunkBytes>,
  ): Promise<{ digests: UploadDigests; reread: number }> {
    let state = this.states.get(uploadId);
    if (!state || state.epoch !== epoch) {
      this.forget(uploadId);
      state = this.start(uploadId, epoch);
    }
    state.finishing = true;
    let reread = 0;
    try {
      while (state.next < count) {
        const index = state.next;
        let chunk = state.pending.get(index);
        if (chunk) {
          state.pending.delete(index);
          this.pendingBytes -= chunk.data.length;
        } else {
          chunk = await read(index);
          reread++;
        }
        consume(state, chunk);
      }
      const digests = state.hasher.digests();
      return { digests, reread };
    } finally {
      this.forget(uploadId);
    }
  }

  forget(uploadId: string): void {
    const state = this.states.get(uploadId);
    if (!state) return;
    for (const chunk of state.pending.values()) this.pendingBytes -= chunk.data.length;
    this.states.delete(uploadId);
  }

  /** Bytes held for chunks that arrived early (for tests and metrics). */
  heldBytes(): number {
    return this.pendingBytes;
  }

  private start(uploadId: string, epoch: number): State {
    const state: State = {
      epoch,
      next: 0,
      hasher: new DigestHasher(),
      pending: new Map(),
      finishing: false,
    };
    this.states.set(uploadId, state);
    while (this.states.size > this.maxStates) {
      const oldest = this.states.keys().next().value;
      if (oldest === undefined) break;
      this.forget(oldest);
    }
    return state;
  }

  private drain(state: State): void {
    for (let chunk = state.pending.get(state.next); chunk; chunk = state.pending.get(state.next)) {
      state.pending.delete(state.next);
      this.pendingBytes -= chunk.data.length;
      consume(state, chunk);
    }
  }
}

function consume(state: State, chunk: ChunkBytes): void {
  state.hasher.update(chunk.data, chunk.blocks);
  state.next++;
}
