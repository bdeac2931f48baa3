import { createServer } from 'node:net';

/**
 * A port free on 127.0.0.1 right now. Another process may take it before the caller binds it;
 * the launchers that care retry with a fresh one.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port')),
      );
    });
  });
}
