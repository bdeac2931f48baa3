/**
 * Chunk-sized buffers for request bodies, reused. A fresh 8 MiB `allocUnsafe` per chunk is
 * memory the kernel maps (and zeroes) on first touch and V8 collects as external memory: in a CPU
 * profile of a 1 GiB upload, copying bodies into fresh buffers and the GC it caused cost more than
 * hashing them. Buffers come back once a chunk is written and hashed; one the running hash keeps
 * (a chunk that overtook another) is simply not returned and left to the GC.
 */
export class ChunkBuffers {
  private readonly free: Buffer[] = [];

  constructor(
    private readonly size: number,
    /** Buffers kept for reuse at most (more may be out at once; they are then dropped on return). */
    private readonly keep = 8,
  ) {}

  /** A buffer of at least `bytes` (chunk-sized ones are reused). */
  take(bytes: number): Buffer {
    if (bytes === this.size) return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
    return Buffer.allocUnsafe(bytes);
  }

  /** Returns a buffer from `take` that nothing references any more. */
  give(buffer: Buffer): void {
    if (buffer.length === this.size && this.free.length < this.keep) this.free.push(buffer);
  }
}
