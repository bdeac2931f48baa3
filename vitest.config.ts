import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { WEB_TEST_ORIGIN } from './packages/web/test/server.ts';

/**
 * One runner for the whole workspace. Server suites that touch metadata run twice, once per
 * database (`DFS_TEST_DB`), against a real MariaDB that `test/support/global-mariadb.ts` starts.
 * Storage, deploy and pure unit suites run once. The `s3` project runs the S3 node's suites
 * against a real Ceph RGW that `test/support/global-ceph.ts` starts.
 */
const dbSuites = ['packages/server/test/api/**/*.test.ts', 'packages/server/test/db/**/*.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
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
        },
      },
      {
        extends: true,
        test: { name: 'sqlite', include: dbSuites, env: { DFS_TEST_DB: 'sqlite' } },
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
          env: { DFS_TEST_DB: 'mysql' },
          globalSetup: ['packages/server/test/support/global-mariadb.ts'],
        },
      },
    ],
  },
});
