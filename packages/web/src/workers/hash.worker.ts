// A dedicated module worker: SHA-1 / CRC-32C hashing off the main thread, so the page never freezes.
import { type HashWorkerScope, runHashWorker } from '@dfs/client';

runHashWorker(self as unknown as HashWorkerScope);
