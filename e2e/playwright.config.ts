import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './tests',
  globalSetup: './global-setup.ts',
  // One worker: the specs share one server and the machine has 2 cores (hashing is CPU-bound).
  workers: 1,
  fullyParallel: false,
  timeout: 90_000,
  expect: { timeout: 15_000 },
  reporter: 'list',
  forbidOnly: !!process.env.CI,
  retries: 0,
  use: {
    headless: true,
    viewport: { width: 1360, height: 860 },
    locale: 'en-US',
    acceptDownloads: true,
    trace: 'retain-on-failure',
    launchOptions: {
      // Never download browsers: the system's Chromium (Debian package) is used.
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    },
  },
});
