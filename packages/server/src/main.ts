import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { legacyDataDirNotice } from './data-dir.ts';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`dfs: bad configuration: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  // Readable lines for a person at a terminal; JSON lines for everything else (log collectors).
  // pino-pretty is loaded only for the terminal: a service's heap stays without it.
  const logger = process.stdout.isTTY
    ? {
        level: config.logLevel,
        stream: (await import('pino-pretty')).default({ colorize: true, translateTime: 'SYS:HH:MM:ss.l' }),
      }
    : { level: config.logLevel };
  const app = await buildApp(config, { web: true, jobs: true, logger });
  const notice = legacyDataDirNotice(config.dataDir);
  if (notice) app.log.warn(notice);
  // SIGINT/SIGTERM (and an uncaught error) close the app: in-flight requests finish, jobs stop,
  // connections to nodes and the database close. A second signal, or 30 s, ends it at once.
  closeWithGrace({ delay: 30_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an uncaught error');
    else app.log.info({ signal }, 'shutting down');
    await app.close();
  });
  await app.listen({ port: config.port, host: config.host });
  await app.listenMetrics();
}

main().catch((error) => {
  console.error('dfs: failed to start:', error);
  process.exit(1);
});
