import { describe, expectTypeOf, it } from 'vitest';
import type { DfsApi, HashWorkerScope, UploadTransport, WorkerLike } from '../src/index.ts';

/**
 * The client core names the few browser and API shapes it needs instead of depending on the DOM
 * or on DfsApi itself; these are checked by the type checker (vitest's typecheck and `tsc` over
 * test/ both see them) and fail the build when the real types drift away.
 */
describe('structural types', () => {
  it('a DOM Worker is a WorkerLike, `self` a HashWorkerScope, DfsApi an UploadTransport', () => {
    expectTypeOf<Worker>().toExtend<WorkerLike>();
    expectTypeOf<Window & typeof globalThis>().toExtend<HashWorkerScope>();
    expectTypeOf<DfsApi>().toExtend<UploadTransport>();
  });
});
