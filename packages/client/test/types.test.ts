import { describe, expect, expectTypeOf, it } from 'vitest';
import { DfsApi, type HashWorkerScope, type UploadTransport, type WorkerLike } from '../src/index.ts';

/**
 * The client core names the few browser and API shapes it needs instead of depending on the DOM
 * or on DfsApi itself. The type assertions are checked by `pnpm typecheck` (tsc runs over test/),
 * and the @ts-expect-error lines fail it if the checks ever stop biting; the runtime assertions
 * check what a transport must actually offer.
 */
describe('structural types', () => {
  it('a DOM Worker is a WorkerLike, `self` a HashWorkerScope, DfsApi an UploadTransport', () => {
    expectTypeOf<Worker>().toExtend<WorkerLike>();
    expectTypeOf<Window & typeof globalThis>().toExtend<HashWorkerScope>();
    expectTypeOf<DfsApi>().toExtend<UploadTransport>();
    // @ts-expect-error an object without postMessage/addEventListener is no WorkerLike
    expectTypeOf<{ terminate(): void }>().toExtend<WorkerLike>();
  });

  it('DfsApi has every method the upload engine calls', () => {
    const api = new DfsApi({ baseUrl: 'http://127.0.0.1:1' }) as unknown as Record<string, unknown>;
    const engineCalls: (keyof UploadTransport)[] = [
      'createUpload',
      'getUpload',
      'putChunk',
      'completeUpload',
      'abortUpload',
      'uploadSimple',
      'uploadBatch',
    ];
    for (const method of engineCalls) expect(typeof api[method], method).toBe('function');
  });
});
