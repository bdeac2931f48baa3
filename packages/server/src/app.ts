import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerOptions,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import type { Config } from './config.ts';
import { createDb, type Db, migrate } from './db/knex.ts';
import { HttpError } from './errors.ts';
import { registerAuth } from './plugins/auth.ts';
import { registerErrorHandling } from './plugins/errors.ts';
import { registerOpenApi } from './plugins/openapi.ts';
import { registerWeb } from './plugins/web.ts';
import { Repositories } from './repositories/index.ts';
import { authRoutes } from './routes/auth.ts';
import { healthRoutes } from './routes/health.ts';
import { AuthService } from './services/auth.ts';
import { StorageCluster } from './services/cluster.ts';

export interface Services {
  db: Db;
  repos: Repositories;
  auth: AuthService;
  cluster: StorageCluster;
  now: () => number;
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    services: Services;
  }
}

export type AppInstance = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface BuildOptions {
  logger?: FastifyServerOptions['logger'];
  /** Serve the built web app (off in most tests). */
  web?: boolean;
  now?: () => number;
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<AppInstance> {
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel },
    // Slow clients must not hold sockets: whole-request and keep-alive limits (DESIGN.md §11).
    requestTimeout: 120_000,
    keepAliveTimeout: 10_000,
    connectionTimeout: 30_000,
    bodyLimit: 1024 * 1024,
    trustProxy: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as AppInstance;

  const now = options.now ?? Date.now;
  const db = createDb(config.dbUrl);
  await migrate(db);
  const repos = new Repositories(db);
  const cluster = new StorageCluster(repos, {
    nodeUrls: config.nodeUrls,
    replicas: config.replicas,
    heartbeatMs: config.heartbeatMs,
    now,
    log: app.log,
  });
  const services: Services = {
    db,
    repos,
    now,
    cluster,
    auth: new AuthService(repos, { sessionTtlMs: config.sessionTtlMs, now }),
  };
  app.decorate('config', config);
  app.decorate('services', services);

  registerErrorHandling(app);
  await app.register(cookie);
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) =>
      new HttpError('rate_limited', `too many requests; retry in ${context.after}`),
  });
  registerAuth(app, services.auth);
  await registerOpenApi(app);

  await app.register(healthRoutes);
  await app.register(authRoutes);
  if (options.web) await registerWeb(app);

  await cluster.start();
  app.addHook('onClose', async () => {
    await cluster.stop();
    await db.destroy();
  });
  return app;
}
