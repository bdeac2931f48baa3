import pretty from 'pino-pretty';
import { buildApp } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';

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
  const logger = process.stdout.isTTY
    ? { level: config.logLevel, stream: pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l' }) }
    : { level: config.logLevel };
  const app = await buildApp(config, { web: true, jobs: true, logger });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      app.log.info({ signal }, 'shutting down');
      app.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
  await app.listen({ port: config.port, host: config.host });
}

main().catch((error) => {
  console.error('dfs: failed to start:', error);
  process.exit(1);
});
