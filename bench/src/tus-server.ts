/**
 * The peer measured against dfs: a stock @tus/server with @tus/file-store, in its own process so
 * its memory is its own. Env: TUS_PORT, TUS_DIR. Prints `ready` once listening.
 */
import http from 'node:http';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

const port = Number(process.env.TUS_PORT);
const directory = process.env.TUS_DIR;
if (!port || !directory) {
  console.error('tus-server: TUS_PORT and TUS_DIR are required');
  process.exit(2);
}

const tus = new Server({ path: '/files', datastore: new FileStore({ directory }) });
const server = http.createServer((req, res) => {
  tus.handle(req, res).catch((error: unknown) => {
    console.error('tus-server:', error);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write('ready\n');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => server.close(() => process.exit(0)));
}
