// Worker-thread entry for bench/hashing.ts: load the TypeScript sources through tsx, then serve
// runHashWorker on the MessagePort we were given.
import { workerData } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

const { runHashWorker } = await tsImport('../src/index.ts', import.meta.url);
runHashWorker(workerData.port);
workerData.port.start();
