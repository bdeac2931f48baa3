import { Blob as NodeBlob } from 'node:buffer';
import { type HashWorkerScope, runHashWorker } from '@dfs/client';

/**
 * happy-dom has no Worker. This one runs the app's real worker code (runHashWorker, as
 * src/workers/hash.worker.ts does) on the far end of a MessageChannel in this thread: the store,
 * the worker pool and the worker protocol are the app's own; only the thread is not.
 */
export class InThreadWorker {
  constructor() {
    const { port1, port2 } = new MessageChannel();
    runHashWorker(port2 as unknown as HashWorkerScope);
    port2.start();
    port1.start();
    // A browser copies (or moves) a message when postMessage is called, so a buffer sent to one
    // worker and then moved to another arrives whole: the copy is made here and now. A Node
    // MessageChannel clones only Node's own Blobs, so happy-dom's are copied into one on the
    // way; messages still leave in order.
    const post = port1.postMessage.bind(port1);
    let order = Promise.resolve();
    const postMessage = (msg: { blob?: Blob }, transfer?: Transferable[]) => {
      const copied = msg.blob ? null : structuredClone(msg, { transfer: transfer as Transferable[] });
      order = order.then(async () => {
        if (copied) return post(copied);
        const blob = msg.blob!;
        post(blob instanceof NodeBlob ? msg : { ...msg, blob: new NodeBlob([await blob.arrayBuffer()]) });
      });
    };
    // biome-ignore lint/correctness/noConstructorReturn: stands in for the browser's Worker
    return Object.assign(port1, { postMessage, terminate: () => port1.close() }) as unknown as InThreadWorker;
  }
}
