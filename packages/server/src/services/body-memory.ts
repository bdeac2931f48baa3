import type { Readable } from 'node:stream';
import { HttpError } from '../errors.ts';

/** Memory held for one request body; grows as its bytes arrive, given back once. */
export interface MemoryLease {
  /** Counts `bytes` more, or throws `rate_limited` (429) when a bound would be passed. */
  grow(bytes: number): void;
  /** Counts `bytes` fewer (they left memory: written to the nodes). */
  shrink(bytes: number): void;
  release(): void;
}

/**
 * Bounds the memory held for upload bodies still arriving, per user and in all. A chunk PUT holds
 * a whole chunk before it is checked and written, a tus PATCH with `Upload-Checksum` its whole
 * body: without a bound, a few users holding many such requests open pinned gigabytes. A request
 * past a bound is refused with `429` and `Retry-After` before it holds anything; clients retry.
 */
export class BodyMemory {
  private used = 0;
  private readonly byUser = new Map<string, number>();

  constructor(private readonly limits: { totalBytes: number; perUserBytes: number }) {}

  /** A lease of `bytes` for `userId`'s request (0 to grow it as the body arrives). */
  take(userId: string, bytes: number): MemoryLease {
    let held = 0;
    let released = false;
    const lease: MemoryLease = {
      grow: (more) => {
        if (released || more <= 0) return;
        this.reserve(userId, more);
        held += more;
      },
      shrink: (fewer) => {
        const n = Math.min(fewer, held);
        if (released || n <= 0) return;
        held -= n;
        this.free(userId, n);
      },
      release: () => {
        if (released) return;
        released = true;
        this.free(userId, held);
        held = 0;
      },
    };
    lease.grow(bytes);
    return lease;
  }

  /** Bytes held now, in all or for one user (for tests and metrics). */
  heldBytes(userId?: string): number {
    return userId === undefined ? this.used : (this.byUser.get(userId) ?? 0);
  }

  private reserve(userId: string, bytes: number): void {
    const mine = this.byUser.get(userId) ?? 0;
    const { totalBytes, perUserBytes } = this.limits;
    // A bound below one request's need would refuse it forever: an idle bound admits one.
    if (perUserBytes > 0 && mine > 0 && mine + bytes > perUserBytes) {
      throw new HttpError(
        'rate_limited',
        'too many upload bodies of yours are arriving at once; retry shortly',
        {
          retryAfter: 2,
        },
      );
    }
    if (totalBytes > 0 && this.used > 0 && this.used + bytes > totalBytes) {
      throw new HttpError('rate_limited', 'the server is receiving too many upload bodies; retry shortly', {
        retryAfter: 2,
      });
    }
    this.used += bytes;
    this.byUser.set(userId, mine + bytes);
  }

  private free(userId: string, bytes: number): void {
    this.used -= bytes;
    const left = (this.byUser.get(userId) ?? 0) - bytes;
    if (left <= 0) this.byUser.delete(userId);
    else this.byUser.set(userId, left);
  }
}

/**
 * The pieces of a request body, failing (and destroying the body, which closes a raw request's
 * connection) when the client sends nothing for `idleMs` while a piece is awaited. Time the
 * server spends between pieces — writing to the nodes, hashing — is not counted. Leaving the loop
 * early leaves the body alone, so an error can still be answered.
 */
export async function* bodyPieces(body: Readable, idleMs: number): AsyncGenerator<Buffer> {
  const pieces = body.iterator({ destroyOnReturn: false });
  if (!(idleMs > 0 && idleMs < 2 ** 31)) {
    for (let step = await pieces.next(); !step.done; step = await pieces.next()) yield step.value as Buffer;
    return;
  }
  // One timer for the whole body, re-armed as each wait starts: a small upload arrives in dozens
  // of socket reads, and a timer, a promise and a race for each of them was a measurable share of
  // the app's CPU with many users uploading at once. A timer that fires while the server works
  // between pieces is not the client's silence: it does nothing and is re-armed at the next wait.
  let waiting = false;
  let idle: HttpError | null = null;
  const timer = setTimeout(() => {
    if (!waiting) return;
    idle = bodyIdle(idleMs);
    // Destroying the body fails the piece awaited (and closes a raw request's connection).
    body.destroy(idle);
  }, idleMs);
  try {
    for (;;) {
      waiting = true;
      timer.refresh();
      let step: IteratorResult<unknown>;
      try {
        step = await pieces.next();
      } catch (error) {
        throw idle ?? error;
      } finally {
        waiting = false;
      }
      if (step.done) return;
      yield step.value as Buffer;
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A body that stopped moving. A raw request's connection is gone with it, so no answer reaches
 * that client; a form's part is answered (and its connection then closed).
 */
function bodyIdle(idleMs: number): HttpError {
  return new HttpError(
    'bad_request',
    `no byte of the request body arrived for ${Math.round(idleMs / 1000)} s; send it again`,
  );
}
