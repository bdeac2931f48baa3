// Hash worker entry for the Chromium page: the same two lines as the web app's hash.worker.ts.
import { type HashWorkerScope, runHashWorker } from '@dfs/client';

runHashWorker(self as unknown as HashWorkerScope);
