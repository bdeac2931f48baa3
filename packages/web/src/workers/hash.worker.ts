// A dedicated module worker: SHA-1 / MD5 hashing off the main thread, so the page never freezes.
import { type HashWorkerScope, runHashWorker } from '@dfs/client';

runHashWorker(self as unknown as HashWorkerScope);
