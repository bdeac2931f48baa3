import { Readable } from 'node:stream';

interface ReadSlot {
  pos: number;
  len: number;
  data?: Buffer;
}

/**
 * A read-ahead stream over one remote handle: up to `concurrency` reads in flight, emitted in order.
 * It stops asking for more while the consumer is not reading, and fails (instead of hanging) when
 * the connection drops or a read gets no answer within the idle timeout.
 */
export class SftpReader extends Readable {
  private next: number;
  private readonly slots: ReadSlot[] = [];
  private wanting = false;
  private finished = false;

  constructor(
    private readonly io: {
      readAt(pos: number, len: number): Promise<Buffer>;
      closeHandle(): void;
      readLen: number;
      concurrency: number;
    },
    start: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: io.readLen * 2 });
    this.next = start;
  }

  override _read(): void {
    this.wanting = true;
    this.pump();
  }

  private pump(): void {
    while (!this.destroyed && !this.finished && this.slots[0]?.data) {
      const slot = this.slots.shift()!;
      const data = slot.data!;
      if (data.length === 0) {
        // EOF before the requested end: like fs streams, a range past the end is cut short.
        this.finished = true;
        this.push(null);
        return;
      }
      if (data.length < slot.len) {
        // A short read is legal mid-file; the rest is fetched before anything later is emitted.
        const rest = { pos: slot.pos + data.length, len: slot.len - data.length };
        this.slots.unshift(rest);
        this.issue(rest);
      }
      if (!this.push(data)) this.wanting = false;
    }
    if (this.destroyed || this.finished) return;
    if (this.slots.length === 0 && this.next >= this.end) {
      this.finished = true;
      this.push(null);
      return;
    }
    while (this.wanting && this.slots.length < this.io.concurrency && this.next < this.end) {
      const slot = { pos: this.next, len: Math.min(this.io.readLen, this.end - this.next) };
      this.next += slot.len;
      this.slots.push(slot);
      this.issue(slot);
    }
  }

  private issue(slot: ReadSlot): void {
    this.io.readAt(slot.pos, slot.len).then(
      (data) => {
        slot.data = data;
        this.pump();
      },
      (err: Error) => this.destroy(err),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.finished = true;
    this.io.closeHandle();
    cb(err);
  }
}
