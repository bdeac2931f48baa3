import { PassThrough, type Readable } from 'node:stream';

/**
 * Copies one source to several consumers with shared backpressure: the source pauses until every
 * live branch has drained, so memory stays bounded by the branches' buffers whatever the speed
 * of the slowest node. A branch that fails is dropped and the others go on; `observe` sees every
 * byte once (the hashers).
 */
export function fanOut(
  source: Readable,
  count: number,
  observe: (chunk: Buffer) => void,
  highWaterMark = 4 * 1024 * 1024,
): { branches: PassThrough[]; done: Promise<void> } {
  const branches = Array.from({ length: count }, () => new PassThrough({ highWaterMark }));
  const live = new Set(branches);
  let waiting = 0;

  for (const branch of branches) {
    branch.on('error', () => drop(branch));
    branch.on('close', () => drop(branch));
  }

  function drop(branch: PassThrough): void {
    if (!live.delete(branch)) return;
    if (live.size === 0) source.destroy(new Error('every destination failed'));
    else resumeIfDrained();
  }

  function resumeIfDrained(): void {
    if (waiting > 0 && [...live].every((b) => !b.writableNeedDrain)) {
      waiting = 0;
      source.resume();
    }
  }

  const done = new Promise<void>((resolve, reject) => {
    source.on('data', (chunk: Buffer) => {
      observe(chunk);
      for (const branch of live) {
        if (!branch.write(chunk)) {
          waiting++;
          branch.once('drain', resumeIfDrained);
        }
      }
      if (waiting > 0) source.pause();
    });
    source.on('end', () => {
      for (const branch of live) branch.end();
      resolve();
    });
    source.on('error', (error) => {
      for (const branch of live) branch.destroy(error);
      reject(error);
    });
  });
  return { branches, done };
}
