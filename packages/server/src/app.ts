import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import { fastifyRequestContext } from '@fastify/request-context';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerOptions,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import { type Config, resolveSecret } from './config.ts';
import { createDb, type Db, migrate } from './db/knex.ts';
import { ReplicaTracker } from './db/read-replica.ts';
import { WalSync, walPathOf } from './db/wal-sync.ts';
import { HttpError } from './errors.ts';
import { DownloadResponder } from './http/download-responder.ts';
import { collectJob, sweepJob } from './jobs/maintenance.ts';
import { reconcileJob } from './jobs/reconcile.ts';
import { type ClusterJobDeps, repairJob } from './jobs/repair.ts';
import { type Job, JobRunner } from './jobs/runner.ts';
import { scrubJob } from './jobs/scrub.ts';
import { versionsJob } from './jobs/versions.ts';
import { registerAuth } from './plugins/auth.ts';
import { registerCors } from './plugins/cors.ts';
import { registerErrorHandling, registerNotFound } from './plugins/errors.ts';
import { registerHttpLimits } from './plugins/http-limits.ts';
import { registerMetrics } from './plugins/metrics.ts';
import { registerOpenApi } from './plugins/openapi.ts';
import { ReadRouting, registerReadRouting } from './plugins/read-replica.ts';
import { registerWeb } from './plugins/web.ts';
import { Repositories } from './repositories/index.ts';
import { MetricsRepository } from './repositories/metrics.ts';
import { adminRoutes } from './routes/admin.ts';
import { archiveRoutes } from './routes/archives.ts';
import { auditRoutes } from './routes/audit.ts';
import { authRoutes } from './routes/auth.ts';
import { fileRoutes } from './routes/files.ts';
import { groupRoutes } from './routes/groups.ts';
import { healthRoutes } from './routes/health.ts';
import { historyRoutes } from './routes/history.ts';
import { memberRoutes } from './routes/members.ts';
import { nextcloudRoutes } from './routes/nextcloud.ts';
import { nextcloudTrashbinRoutes } from './routes/nextcloud-trashbin.ts';
import { nextcloudUploadRoutes } from './routes/nextcloud-uploads.ts';
import { nextcloudVersionRoutes } from './routes/nextcloud-versions.ts';
import { nodeRoutes } from './routes/nodes.ts';
import { oidcRoutes } from './routes/oidc.ts';
import { passkeyRoutes } from './routes/passkeys.ts';
import { publicUploadRoutes } from './routes/public-uploads.ts';
import { restoreRoutes } from './routes/restore.ts';
import { sessionRoutes } from './routes/sessions.ts';
import { shareRoutes } from './routes/shares.ts';
import { statsRoutes } from './routes/stats.ts';
import { tusRoutes } from './routes/tus.ts';
import { uploadRoutes } from './routes/uploads.ts';
import { versionRoutes } from './routes/versions.ts';
import { webdavRoutes } from './routes/webdav.ts';
import { AdminService } from './services/admin.ts';
import { AppPasswordService } from './services/app-passwords.ts';
import { ArchiveService } from './services/archives.ts';
import { AuthService } from './services/auth.ts';
import { BatchUpload } from './services/batch-upload.ts';
import { BodyMemory } from './services/body-memory.ts';
import { StorageCluster } from './services/cluster.ts';
import { ContentStore } from './services/content-store.ts';
import { DAV_LIMITS, type DavLimits } from './services/dav-limits.ts';
import { DavLockService } from './services/dav-locks.ts';
import { FileService } from './services/files.ts';
import { ChunkDigests, defaultDigestThreads } from './services/hashing/pool.ts';
import { UploadHashes } from './services/hashing/upload-hashes.ts';
import { AlertService } from './services/history/alerts.ts';
import { HistoryService } from './services/history/history.ts';
import { MassChangeGuard } from './services/history/mass-change.ts';
import { RestoreService } from './services/history/restore.ts';
import { UserJobs } from './services/history/user-jobs.ts';
import { VersionService } from './services/history/versions.ts';
import { LdapDirectory, LdapSignin } from './services/identity/ldap.ts';
import { UserLimits } from './services/limits.ts';
import { NodeStatus } from './services/node-status.ts';
import { AuditLog } from './services/operations/audit.ts';
import { BackupSchedule } from './services/operations/backup/schedule.ts';
import { Metrics } from './services/operations/metrics.ts';
import { ReadinessCheck } from './services/operations/readiness.ts';
import { REPLICA_SLICE, registryCounters, StatsService } from './services/operations/stats.ts';
import { PasskeyService } from './services/passkeys.ts';
import { PasswordHasher } from './services/passwords.ts';
import { NextcloudUploads } from './services/protocols/nextcloud-uploads.ts';
import { SessionService } from './services/sessions.ts';
import { ShareService } from './services/shares.ts';
import { AccessService } from './services/sharing/access.ts';
import { GroupService } from './services/sharing/groups.ts';
import { MemberService } from './services/sharing/members.ts';
import { SharedTree } from './services/sharing/shared-tree.ts';
import { ThumbnailService } from './services/thumbnails.ts';
import { TusService } from './services/tus.ts';
import { TwoFactorService } from './services/two-factor.ts';
import { UploadParts } from './services/upload-parts.ts';
import { UploadService } from './services/uploads.ts';
import { DavService } from './services/webdav.ts';

export interface Services {
  db: Db;
  repos: Repositories;
  /** Where stale-tolerant reads go: the read replica when one is set and fresh enough. */
  reads: ReadRouting;
  auth: AuthService;
  admin: AdminService;
  cluster: StorageCluster;
  nodeStatus: NodeStatus;
  contents: ContentStore;
  files: FileService;
  limits: UserLimits;
  uploads: UploadService;
  batchUploads: BatchUpload;
  shares: ShareService;
  /** Who reaches which entry: owners, and the users and groups entries are shared with. */
  access: AccessService;
  /** Shares with users and groups: members of an entry, what is shared with a user. */
  members: MemberService;
  /** Groups of users (admins manage them). */
  groups: GroupService;
  /** The tree as a recipient of shares sees it (mounts at the top, paths from the share). */
  sharedTree: SharedTree;
  archives: ArchiveService;
  appPasswords: AppPasswordService;
  /** TOTP as a second factor at sign-in. */
  twoFactor: TwoFactorService;
  /** Passkeys (WebAuthn): a second factor, and sign-in without a password. */
  passkeys: PasskeyService;
  sessions: SessionService;
  thumbnails: ThumbnailService;
  tus: TusService;
  dav: DavService;
  versions: VersionService;
  history: HistoryService;
  restores: RestoreService;
  userJobs: UserJobs;
  alerts: AlertService;
  massChanges: MassChangeGuard;
  /** Prometheus metrics (services/operations/metrics.ts); `registry` holds them by name. */
  metrics: Metrics;
  /** The admin dashboard's own time series (services/operations/stats.ts). */
  stats: StatsService;
  /** Who signed in, changed access or administered what, from where (services/operations/audit.ts). */
  audit: AuditLog;
  /** What `/readyz` answers: the database, pending migrations, enough storage nodes up. */
  readiness: ReadinessCheck;
  /** The scheduled metadata backup (DFS_BACKUP_DIR, DFS_BACKUP_CRON; services/operations/backup). */
  backups: BackupSchedule;
  /** SQLite only: syncs the WAL before a write's response. */
  walSync: WalSync | null;
  /** Nextcloud's chunked upload v2, on tus-style upload sessions. */
  ncUploads: NextcloudUploads;
  davLocks: DavLockService;
  downloads: DownloadResponder;
  jobs: JobRunner;
  maintenance: { sweep: Job; collect: Job; reconcile: Job; versions: Job; auditRetention: Job };
  /** Repair and scrub; `deps` lets tests call `repair(deps)` / `scrub(deps)` directly. */
  clusterJobs: { repair: Job; scrub: Job; deps: ClusterJobDeps };
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

/** Methods that never write: their answers need no sync first. */
const READ_ONLY_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PROPFIND']);

export interface BuildOptions {
  logger?: FastifyServerOptions['logger'];
  /** Run background jobs (sweep, collect, repair, scrub) on their intervals; tests call them directly. */
  jobs?: boolean;
  /** Serve the built web app (off in most tests); a string is the built app's directory. */
  web?: boolean | string;
  now?: () => number;
  /** Other WebDAV bounds than DAV_LIMITS (tests reach them without megabytes of data). */
  davLimits?: Partial<DavLimits>;
  /** Restores of more changed entries than this run as a job (tests reach it with a few). */
  restoreInlineEntries?: number;
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<AppInstance> {
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel },
    // Slow clients must not hold sockets: whole-request and keep-alive limits (DESIGN.md §11).
    requestTimeout: 600_000,
    keepAliveTimeout: 10_000,
    connectionTimeout: 60_000,
    bodyLimit: 1024 * 1024,
    // Rate limits key on the client address; a forwarded one is only believed behind a proxy.
    // A hop count trusts the n proxies nearest to the socket (proxy-addr's rule for numbers).
    trustProxy:
      typeof config.trustProxy === 'number'
        ? (
            (hops: number) => (_address: string, hop: number) =>
              hop < hops
          )(config.trustProxy)
        : config.trustProxy,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as AppInstance;

  const now = options.now ?? Date.now;
  const db = createDb(config.dbUrl);
  await migrate(db);
  const walPath = walPathOf(config.dbUrl);
  const walSync = walPath ? new WalSync(walPath) : null;
  const repos = new Repositories(db);
  // Wall-clock time, not `now`: Prometheus stamps samples with real time, and a test's frozen
  // clock would keep the database-derived gauges cached for ever.
  const metrics = new Metrics({ readReplica: Boolean(config.dbReadUrl) });
  const audit = new AuditLog(db, { now, log: app.log, retentionMs: config.auditRetentionMs });
  const replicaDb = config.dbReadUrl ? createDb(config.dbReadUrl) : null;
  const replicaTracker = replicaDb
    ? new ReplicaTracker(db, replicaDb, { maxLagMs: config.dbReadMaxLagMs, pollMs: 200, now, log: app.log })
    : null;
  const reads = new ReadRouting(
    repos,
    replicaDb && replicaTracker ? { repos: new Repositories(replicaDb), tracker: replicaTracker } : null,
  );
  const cluster = new StorageCluster(repos, {
    nodeUrls: config.nodeUrls,
    replicas: config.replicas,
    heartbeatMs: config.heartbeatMs,
    drainNodes: config.drainNodes,
    accelLocations: config.accelLocations,
    now,
    log: app.log,
    onDown: (node) => metrics.nodeDown.inc({ node }),
  });
  const secret = resolveSecret(config);
  const passwords = new PasswordHasher(secret);
  await removeV1Staging(config.dataDir, app.log);
  const contents = new ContentStore(repos, cluster, app.log, now);
  const limits = new UserLimits(repos, {
    defaultQuotaBytes: config.defaultQuotaBytes,
    maxFilesPerUser: config.maxFilesPerUser,
    now,
  });
  const davLimits: DavLimits = { ...DAV_LIMITS, ...options.davLimits };
  const davLocks = new DavLockService(repos, now, davLimits);
  // WebDAV locks hold for the API's writes too; WebDAV's own writes name them in `If` instead.
  const files = new FileService(repos, now, limits, davLocks);
  const access = new AccessService(repos);
  const uploadParts = new UploadParts(repos, cluster, app.log, now);
  const chunkDigests = new ChunkDigests(config.chunkSize, config.digestThreads ?? defaultDigestThreads());
  const batchUploads = new BatchUpload(
    repos,
    uploadParts,
    contents,
    files,
    limits,
    config.minFreeBytes,
    metrics,
  );
  const uploads = new UploadService(
    repos,
    uploadParts,
    new UploadHashes(config.uploadHashBufferBytes),
    contents,
    files,
    {
      chunkSize: config.chunkSize,
      maxFileSize: config.maxFileSize,
      expiryMs: config.uploadExpiryMs,
      maxOpenPerUser: config.maxUploadsPerUser,
      minFreeBytes: config.minFreeBytes,
      completeLeaseMs: 30_000,
      completeWaitMs: 20_000,
      bodyIdleMs: config.uploadIdleMs,
    },
    app.log,
    now,
    limits,
    chunkDigests,
    new BodyMemory({ totalBytes: config.uploadMemoryBytes, perUserBytes: config.uploadMemoryPerUserBytes }),
    metrics,
  );
  const appPasswords = new AppPasswordService(repos, now);
  const twoFactor = new TwoFactorService(repos, { secret, now });
  const passkeys = new PasskeyService(repos, { ...config.webauthn, now });
  const auth = new AuthService(repos, {
    appPasswords,
    twoFactor,
    passkeys,
    requireTwoFactor: config.requireTwoFactor,
    sessionTtlMs: config.sessionTtlMs,
    signup: config.signup,
    passwords,
    now,
    ldap: config.ldap ? new LdapSignin(repos, new LdapDirectory(config.ldap), now) : null,
    audit,
  });
  const jobDeps = {
    repos,
    cluster,
    log: app.log,
    now,
    metrics,
    gcGraceMs: config.gcGraceMs,
    backupKeepMs: config.backup.keepMs,
  };
  const clusterDeps: ClusterJobDeps = {
    repos,
    cluster,
    log: app.log,
    now,
    repairGraceMs: config.repairGraceMs,
    scrubBytesPerSecond: config.scrubBytesPerSecond,
    scrubPeriodMs: config.scrubPeriodMs,
    metrics,
  };
  // WebDAV names its lock tokens in its own requests (If:), so its writes skip the API's lock check.
  const davFiles = new FileService(repos, now, limits);
  const dav = new DavService(repos, limits, davFiles, uploads, davLimits);
  const tus = new TusService(repos, uploads, uploadParts, files, app.log, now, config.uploadIdleMs, limits);
  const massChanges = new MassChangeGuard(
    repos,
    now,
    app.log,
    { files: config.massChangeFiles, windowMs: config.massChangeWindowMs },
    audit,
  );
  files.listen(massChanges.note);
  davFiles.listen(massChanges.note);
  const userJobs = new UserJobs(repos, now, app.log);
  const services: Services = {
    db,
    repos,
    reads,
    now,
    cluster,
    nodeStatus: new NodeStatus(repos, cluster, now),
    contents,
    files,
    limits,
    uploads,
    batchUploads,
    jobs: new JobRunner(repos, app.log, now),
    maintenance: {
      sweep: sweepJob(jobDeps),
      collect: collectJob(jobDeps),
      reconcile: reconcileJob(jobDeps),
      versions: versionsJob({ repos, limits, now, config }),
      auditRetention: audit.retentionJob(),
    },
    clusterJobs: { repair: repairJob(clusterDeps), scrub: scrubJob(clusterDeps), deps: clusterDeps },
    shares: new ShareService(repos, files, passwords, secret, now, uploads),
    access,
    members: new MemberService(repos, access, now),
    groups: new GroupService(repos, now),
    sharedTree: new SharedTree(repos, access, files, new HistoryService(repos)),
    downloads: new DownloadResponder(contents, metrics),
    archives: new ArchiveService(repos, contents, now),
    appPasswords,
    twoFactor,
    passkeys,
    sessions: new SessionService(repos, now),
    dav,
    davLocks,
    tus,
    versions: new VersionService(repos, files, limits, now),
    history: new HistoryService(repos),
    restores: new RestoreService(repos, files, userJobs, options.restoreInlineEntries, audit),
    userJobs,
    alerts: new AlertService(repos, files, massChanges, now),
    massChanges,
    audit,
    metrics,
    stats: new StatsService(repos, cluster, registryCounters(metrics.registry), now),
    readiness: new ReadinessCheck(db, cluster, { replicas: config.replicas, now }),
    backups: new BackupSchedule({ db, repos, config, log: app.log, now, audit }),
    walSync,
    ncUploads: new NextcloudUploads(repos, uploads, tus, davFiles, dav, limits, now),
    thumbnails: new ThumbnailService(path.join(config.dataDir, 'thumbnails'), contents, app.log),
    auth,
    admin: new AdminService(repos, auth, limits, now, audit),
  };
  app.decorate('config', config);
  app.decorate('services', services);
  const metricsRepo = new MetricsRepository(db);
  metrics.attach({
    nodes: () => cluster.nodeSamples(),
    pool: () => {
      const pool = db.client.pool;
      return pool
        ? { used: pool.numUsed(), free: pool.numFree(), pending: pool.numPendingAcquires() }
        : { used: 0, free: 0, pending: 0 };
    },
    replicaLagSeconds: () => replicaTracker?.lagSeconds() ?? null,
    replicaStates: () => repos.stats.replicaTotals(REPLICA_SLICE).then((t) => t.byState),
    storedBytes: () =>
      repos.stats.totals().then((t) => ({ logical: t.logicalBytes, physical: t.uniqueBytes })),
    queuedJobs: () => metricsRepo.runningUserJobs(),
  });

  registerErrorHandling(app);
  await registerMetrics(app, metrics, config);
  if (walSync) {
    // What a write's answer says is stored is on disk before the answer goes (db/wal-sync.ts).
    app.addHook('onSend', async (request) => {
      if (!READ_ONLY_METHODS.has(request.method)) await walSync.sync();
    });
  }
  // Request-scoped state (who is acting, for versions and history) without passing it through
  // every service call.
  await app.register(fastifyRequestContext);
  await app.register(cookie);
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) =>
      new HttpError('rate_limited', `too many requests; retry in ${context.after}`),
  });
  registerHttpLimits(app, {
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    bodyTimeoutMs: config.bodyTimeoutMs,
  });
  await registerCors(app, config.corsOrigins);
  // JSON routes take JSON only: a text/plain body is what a cross-site form can send without a
  // preflight, so it must not be parsed into something a route accepts.
  app.removeContentTypeParser('text/plain');
  registerAuth(app, services.auth, config.publicUrl);
  registerReadRouting(app, reads, now);
  await registerOpenApi(app);

  await app.register(healthRoutes);
  await app.register(authRoutes);
  await app.register(passkeyRoutes);
  await app.register(oidcRoutes);
  await app.register(sessionRoutes);
  await app.register(adminRoutes);
  await app.register(auditRoutes);
  await app.register(statsRoutes);
  await app.register(uploadRoutes);
  await app.register(fileRoutes);
  await app.register(versionRoutes);
  await app.register(historyRoutes);
  await app.register(restoreRoutes);
  await app.register(archiveRoutes);
  await app.register(tusRoutes);
  await app.register(webdavRoutes);
  await app.register(shareRoutes);
  await app.register(publicUploadRoutes);
  await app.register(memberRoutes);
  await app.register(groupRoutes);
  await app.register(nodeRoutes);
  await app.register(nextcloudRoutes);
  await app.register(nextcloudUploadRoutes);
  await app.register(nextcloudVersionRoutes);
  await app.register(nextcloudTrashbinRoutes);
  registerNotFound(
    app,
    options.web
      ? await registerWeb(app, typeof options.web === 'string' ? options.web : undefined)
      : undefined,
  );

  try {
    await cluster.start();
  } catch (error) {
    // A bad node list (e.g. DFS_DRAIN_NODES naming no node) stops the boot without leaking handles.
    await cluster.stop();
    await db.destroy();
    await replicaDb?.destroy();
    throw error;
  }
  replicaTracker?.start();
  if (options.jobs) {
    const { repair, scrub } = services.clusterJobs;
    services.jobs.start([...Object.values(services.maintenance), repair, scrub]);
    services.jobs.start([services.stats.countersJob(), services.stats.gaugesJob()]);
    services.backups.start();
    // A drain from DFS_DRAIN_NODES (or one under way before a restart) resumes now.
    if (cluster.view(0).drainingIds.length > 0) services.jobs.kick(repair);
  }
  app.addHook('onClose', async () => {
    await services.jobs.stop();
    await services.backups.stop();
    await userJobs.idle();
    await massChanges.flush();
    await replicaTracker?.stop();
    await cluster.stop();
    await db.destroy();
    await replicaDb?.destroy();
    await walSync?.close();
    await chunkDigests.close();
  });
  return app;
}

/**
 * Version 1 kept unfinished uploads' chunks in `<data>/staging`; they now live on the nodes, and
 * the migration forgot the staged ones (clients send them again), so the directory only costs disk.
 */
async function removeV1Staging(dataDir: string, log: FastifyBaseLogger): Promise<void> {
  const dir = path.join(dataDir, 'staging');
  if (!(await stat(dir).catch(() => null))) return;
  await rm(dir, { recursive: true, force: true });
  log.info({ dir }, 'removed the staging directory of version 1 uploads');
}
