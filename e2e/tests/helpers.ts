import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FileEntry, FileList, Share, UploadSession } from '@dfs/shared';
import { type APIRequestContext, test as base, expect, type Page } from '@playwright/test';

export const MiB = 1024 * 1024;
// The README's screenshots are refreshed on request (DFS_E2E_SCREENSHOTS=1); an ordinary run keeps
// its pictures with the other test output instead of rewriting tracked files.
const SCREENSHOTS = fileURLToPath(
  new URL(
    process.env.DFS_E2E_SCREENSHOTS === '1' ? '../../docs/screenshots/' : '../test-results/screenshots/',
    import.meta.url,
  ),
);

export const test = base.extend<object>({
  // biome-ignore lint/correctness/noEmptyPattern: Playwright reads a fixture's dependencies from this pattern
  baseURL: async ({}, use) => {
    const url = process.env.DFS_E2E_BASE_URL;
    if (!url) throw new Error('DFS_E2E_BASE_URL is not set: run through playwright.config.ts (globalSetup)');
    await use(url);
  },
});
export { expect };

let counter = 0;
/** A username no other test (or earlier run against the same server) has taken. */
export function uniqueName(prefix: string): string {
  counter++;
  return `${prefix}${Date.now().toString(36)}${counter}`;
}

export const PASSWORD = 'correct-horse-battery';

/** Signs up and in through the API; the session cookie lands in the page's context. */
export async function signUpViaApi(request: APIRequestContext, username: string): Promise<void> {
  const up = await request.post('/api/auth/signup', { data: { username, password: PASSWORD } });
  expect(up.status(), await up.text()).toBe(201);
  const inn = await request.post('/api/auth/signin', { data: { username, password: PASSWORD } });
  expect(inn.status(), await inn.text()).toBe(200);
}

/** Writes `size` random bytes (1 MiB at a time: memory stays flat) and returns the SHA-1. */
export function randomFile(dir: string, name: string, size: number): { path: string; sha1: string } {
  mkdirSync(dir, { recursive: true });
  const p = path.join(dir, name);
  const h = createHash('sha1');
  const fd = openSync(p, 'w');
  try {
    for (let left = size; left > 0; ) {
      const n = Math.min(MiB, left);
      const buf = randomBytes(n);
      h.update(buf);
      writeSync(fd, buf);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
  return { path: p, sha1: h.digest('hex') };
}

export function sha1Of(p: string): string {
  return createHash('sha1').update(readFileSync(p)).digest('hex');
}

export async function listFolder(request: APIRequestContext, parentId: string | null): Promise<FileEntry[]> {
  const res = await request.get('/api/files', { params: parentId ? { parentId } : {} });
  expect(res.ok()).toBeTruthy();
  return ((await res.json()) as FileList).items;
}

export async function findByName(
  request: APIRequestContext,
  parentId: string | null,
  name: string,
): Promise<FileEntry> {
  const item = (await listFolder(request, parentId)).find((f) => f.name === name);
  expect(item, `${name} in ${parentId ?? 'root'}`).toBeTruthy();
  return item!;
}

export async function uploadViaApi(
  request: APIRequestContext,
  filePath: string,
  parentId?: string,
): Promise<FileEntry> {
  const res = await request.post('/api/files', {
    multipart: {
      file: {
        name: path.basename(filePath),
        mimeType: 'application/octet-stream',
        buffer: readFileSync(filePath),
      },
      ...(parentId ? { parentId } : {}),
    },
  });
  expect(res.status(), await res.text()).toBe(201);
  return ((await res.json()) as { file: FileEntry }).file;
}

export async function getUpload(request: APIRequestContext, uploadId: string): Promise<UploadSession> {
  const res = await request.get(`/api/uploads/${uploadId}`);
  expect(res.ok(), await res.text()).toBeTruthy();
  return (await res.json()) as UploadSession;
}

export type { Share };

/** Signs in on the sign-in page as the admin global setup made; answers their credentials. */
export async function signInAsAdmin(page: Page): Promise<{ username: string; password: string }> {
  const admin = JSON.parse(process.env.DFS_E2E_ADMIN ?? '{}') as { username: string; password: string };
  await page.goto('/signin');
  await page.locator('input[name=username]').fill(admin.username);
  await page.locator('input[name=password]').fill(admin.password);
  await page.getByTestId('auth-submit').click();
  await expect(page).toHaveURL(/\/files/);
  return admin;
}

/** Screenshots document the UI; a missing or read-only folder must never fail a test. */
export async function screenshot(page: Page, name: string): Promise<void> {
  try {
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
  } catch (err) {
    console.warn(`screenshot ${name} skipped: ${(err as Error).message}`);
  }
}

/** The URL of a chunk PUT. */
export const CHUNK_PUT = /\/api\/uploads\/[^/]+\/chunks\/\d+$/;

/** Counts chunk PUTs the page sends from now on. */
export function countChunkPuts(page: Page): { readonly count: number; stop(): void } {
  let count = 0;
  const onRequest = (req: { method(): string; url(): string }) => {
    if (req.method() === 'PUT' && CHUNK_PUT.test(req.url())) count++;
  };
  page.on('request', onRequest);
  return {
    get count() {
      return count;
    },
    stop: () => page.off('request', onRequest),
  };
}

/** The file browser's rows, by name. */
export function fileRow(page: Page, name: string) {
  return page.locator(`[data-testid="file-row"][data-name="${name}"]`);
}

/** The upload rows of the panel, by file name. */
export function uploadRow(page: Page, name: string) {
  return page.locator(`[data-testid="upload-row"][data-name="${name}"]`);
}

/** The unfinished uploads remembered in IndexedDB (the web app's ResumeStore). */
export async function resumeEntries(
  page: Page,
): Promise<Record<string, { sha1: string; uploadId: string | null }>> {
  return page.evaluate(async () => {
    // Opening a database that doesn't exist would create it without the app's store.
    if (!(await indexedDB.databases()).some((d) => d.name === 'dfs')) return {};
    return new Promise((resolve, reject) => {
      const open = indexedDB.open('dfs');
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const db = open.result;
        if (!db.objectStoreNames.contains('resume')) return resolve({});
        const tx = db.transaction('resume', 'readonly');
        const store = tx.objectStore('resume');
        const out: Record<string, { sha1: string; uploadId: string | null }> = {};
        const cur = store.openCursor();
        cur.onsuccess = () => {
          const c = cur.result;
          if (!c) {
            db.close();
            return resolve(out);
          }
          out[String(c.key)] = c.value;
          c.continue();
        };
        cur.onerror = () => reject(cur.error);
      };
    });
  });
}
