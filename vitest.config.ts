import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';
import { WEB_TEST_ORIGIN } from './packages/web/test/server.ts';

/**
 * One runner for the whole workspace. Server suites that touch metadata run twice, once per
 * database (`DFS_TEST_DB`), against a real MariaDB that `test/support/global-mariadb.ts` starts.
 * Storage, deploy and pure unit suites run once. The `s3` project runs the S3 node's suites
 * against a real Ceph RGW that `test/support/global-ceph.ts` starts.
 */
const dbSuites = ['packages/server/test/api/**/*.test.ts', 'packages/server/test/db/**/*.test.ts'];

/**
 * Suites that run on SQLite only. What they prove lives above the database: the client library
 * and CLI driving the server over HTTP (client-engine, cli-login; the server side of chunked uploads is
 * proven on both databases by uploads, tus and the Nextcloud suites), tus-js-client's interop with
 * /api/tus/ (tus.test.ts keeps the protocol on both), in-memory bounds on stalled request bodies
 * (uploads-memory) and the headers the web app is served with (web); the sign-in protocols whose
 * rules sit above their few rows (OpenID Connect against the provider, passkeys' signatures, the
 * sessions list, required two-factor) and the real clients over shares and WebDAV (sharing-dav
 * and webdav-rclone drive rclone and nextcloudcmd; sharing.test.ts and webdav.test.ts prove the
 * same rules on both databases), and the hash budget (it counts hashing, not SQL). Everything with SQL,
 * transactions, locking, migrations, ordering or counting of its own stays on both databases,
 * and so do the Nextcloud protocol suites (nextcloudcmd's own sync runs are bytes and one client's
 * requests, proven once) and every suite an earlier report promised on both (archives,
 * thumbnails, litmus, the SFTP node, hardening and names).
 */
const sqliteOnly = [
  'packages/server/test/api/client-engine.test.ts',
  'packages/server/test/api/cli-login.test.ts',
  'packages/server/test/api/tus-client.test.ts',
  'packages/server/test/api/uploads-memory.test.ts',
  'packages/server/test/api/wal-sync.test.ts',
  'packages/server/test/api/web.test.ts',
  'packages/server/test/api/oidc.test.ts',
  'packages/server/test/api/oidc-closed.test.ts',
  'packages/server/test/api/passkeys.test.ts',
  'packages/server/test/api/sessions.test.ts',
  'packages/server/test/api/require-2fa.test.ts',
  'packages/server/test/api/sharing-dav.test.ts',
  'packages/server/test/api/webdav-rclone.test.ts',
  'packages/server/test/api/hash-budget.test.ts',
  // /readyz's rules sit above its SQL: the migrations list it reads is proven on both by admin-migrate.
  'packages/server/test/api/readiness.test.ts',
  // Bytes and clients, not SQL: aria2c and curl against share links, nextcloudcmd's sync runs, the
  // mass-change drill (its history queries run on MariaDB in history, restore and versions).
  'packages/server/test/api/share-downloads.test.ts',
  'packages/server/test/api/nextcloud-sync.test.ts',
  'packages/server/test/api/mass-change.test.ts',
  // Metrics: its SQL is three plain aggregates; what the suite costs is a real Prometheus server.
  'packages/server/test/api/metrics.test.ts',
];

/**
 * Suites that replace a module with `vi.mock` (the hash budgets count node:crypto's and
 * hash-wasm's bytes): they need a module graph of their own, so they run in the `mocked` project.
 */
const mockedSuites = [
  'packages/client/test/hash-budget.test.ts',
  'packages/server/test/api/hash-budget.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file builds its own app, data directory and database, so files of one worker can share
    // the loaded modules: a fresh graph per file (the server's is over a second to import) was
    // about a third of the suite's CPU. Module-level state that must not leak is in `mocked`.
    isolate: false,
    // Vitest's default on 2 cores is one worker, so every file waited on the one before it while
    // most of them wait on sockets, child processes (nextcloudcmd, rclone, litmus, aria2c, pnpm
    // cluster) or MariaDB. Each file has its own app, data directory and database, so three run
    // at once; the heavy ones have minute-long timeouts that hold when they share the CPU.
    // VITEST_MAX_WORKERS overrides it.
    maxWorkers: 3,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: [
            'packages/shared/test/**/*.test.ts',
            'packages/client/test/**/*.test.ts',
            'packages/server/test/unit/**/*.test.ts',
            'packages/server/test/storage/**/*.test.ts',
            'packages/server/test/deploy/**/*.test.ts',
            'packages/server/test/cluster/**/*.test.ts',
          ],
          exclude: [...configDefaults.exclude, ...mockedSuites],
        },
      },
      {
        extends: true,
        test: {
          name: 'sqlite',
          include: dbSuites,
          exclude: [...configDefaults.exclude, ...mockedSuites],
          env: { DFS_TEST_DB: 'sqlite' },
        },
      },
      {
        extends: true,
        test: { name: 'mocked', include: mockedSuites, isolate: true, env: { DFS_TEST_DB: 'sqlite' } },
      },
      {
        extends: true,
        test: {
          name: 's3',
          include: ['packages/server/test/s3/**/*.test.ts'],
          env: { DFS_TEST_DB: 'sqlite' },
          globalSetup: ['packages/server/test/support/global-ceph.ts'],
        },
      },
      {
        // The web app's composables and components in happy-dom, against a real server.
        extends: './packages/web/vite.config.ts',
        test: {
          name: 'web',
          root: fileURLToPath(new URL('./packages/web', import.meta.url)),
          include: ['test/**/*.test.ts'],
          environment: 'happy-dom',
          environmentOptions: { happyDOM: { url: `${WEB_TEST_ORIGIN}/files` } },
          globalSetup: ['test/global-server.ts'],
          testTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          // `pnpm cluster` started as a user would, driven through its nginx.
          name: 'cluster',
          include: ['packages/cluster/test/**/*.test.ts'],
          testTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'mariadb',
          include: dbSuites,
          exclude: [...configDefaults.exclude, ...sqliteOnly],
          env: { DFS_TEST_DB: 'mysql' },
          globalSetup: ['packages/server/test/support/global-mariadb.ts'],
        },
      },
    ],
  },
});
