const MIN_CLASS = 64 * 1024;

/**
 * Buffers that travel to a digest thread and back (chunk copies and small contents), kept for
 * reuse in power-of-two sizes.
 *
 * V8 counts every ArrayBuffer as external memory and starts a full collection each time about
 * 64 MB more of it has been allocated. With many users sending small files, a fresh copy per file
 * doubled the app's collections (the socket's own read buffers are the other half), and those
 * marked the heap on every core. Reused buffers allocate nothing. At most `maxPooledBytes` wait
 * here; a buffer given back beyond that is left to the collector.
 */
export class TransferBuffers {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private pooled = 0;

  constructor(private readonly maxPooledBytes = 64 * 1024 * 1024) {}

  /** A buffer of at least `size` bytes, not zeroed: the caller writes what it uses. */
  take(size: number): ArrayBuffer {
    const capacity = classOf(size);
    const reused = this.free.get(capacity)?.pop();
    if (reused) {
      this.pooled -= reused.byteLength;
      return reused;
    }
    // Its own ArrayBuffer (transferable, unlike the shared pool's slices).
    return Buffer.allocUnsafeSlow(capacity).buffer as ArrayBuffer;
  }

  /** Returns a buffer once nothing reads it any more; a detached one (moved away) is ignored. */
  give(buffer: ArrayBuffer): void {
    const capacity = buffer.byteLength;
    if (capacity === 0 || capacity !== classOf(capacity)) return;
    if (this.pooled + capacity > this.maxPooledBytes) return;
    const list = this.free.get(capacity) ?? [];
    list.push(buffer);
    this.free.set(capacity, list);
    this.pooled += capacity;
  }

  /** Bytes waiting for reuse (for tests). */
  pooledBytes(): number {
    return this.pooled;
  }

  /** Buffers of `size`'s class waiting for reuse (for tests). */
  pooledCount(size: number): number {
    return this.free.get(classOf(size))?.length ?? 0;
  }
}

function classOf(size: number): number {
  return Math.max(MIN_CLASS, 2 ** Math.ceil(Math.log2(Math.max(1, size))));
}
