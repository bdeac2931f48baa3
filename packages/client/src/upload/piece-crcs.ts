/**
 * The CRC-32Cs of a hashing pass's pieces, as they come. A chunk the size of a piece takes its
 * piece's CRC instead of reading and checksumming the bytes a second time; a speculative upload's
 * chunk waits for it (the pass reads ahead of the transfer), so each byte is read once for both.
 */
export class PieceCrcs {
  readonly pieceSize: number;
  readonly #known = new Map<number, number>();
  readonly #waiting = new Map<number, ((crc: number | null) => void)[]>();
  #closed = false;

  constructor(pieceSize: number, crcs: readonly number[] = [], closed = false) {
    this.pieceSize = pieceSize;
    crcs.forEach((crc, i) => {
      this.#known.set(i, crc);
    });
    this.#closed = closed;
  }

  /** Records piece `index`'s CRC; chunks waiting for it go on. */
  set(index: number, crc: number): void {
    this.#known.set(index, crc);
    const waiting = this.#waiting.get(index);
    this.#waiting.delete(index);
    for (const resolve of waiting ?? []) resolve(crc);
  }

  /** No more CRCs will come (the pass ended, failed or stopped): whoever waits computes their own. */
  close(): void {
    this.#closed = true;
    for (const waiting of this.#waiting.values()) for (const resolve of waiting) resolve(null);
    this.#waiting.clear();
  }

  /**
   * The CRC of chunk `index` of `chunkSize`-byte chunks: at once when known, after the pass
   * reaches it while one runs, null when the pass does not give it (other sizes, no pass).
   */
  get(index: number, chunkSize: number, signal: AbortSignal): number | null | Promise<number | null> {
    if (chunkSize !== this.pieceSize) return null;
    const known = this.#known.get(index);
    if (known !== undefined) return known;
    if (this.#closed) return null;
    return new Promise<number | null>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      const list = this.#waiting.get(index) ?? [];
      list.push((crc) => {
        signal.removeEventListener('abort', onAbort);
        resolve(crc);
      });
      this.#waiting.set(index, list);
    });
  }
}
