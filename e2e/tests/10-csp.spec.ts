import { expect, findByName, MiB, randomFile, signUpViaApi, test, uniqueName, uploadRow } from './helpers.ts';

// The smallest valid WebAssembly module: magic number and version.
const EMPTY_WASM = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

test('an upload runs under the strict CSP without a violation, and the app cannot be framed', async ({
  page,
  baseURL,
}, testInfo) => {
  await page.addInitScript(() => {
    const seen: string[] = [];
    (globalThis as { cspViolations?: string[] }).cspViolations = seen;
    document.addEventListener('securitypolicyviolation', (e) => {
      seen.push(`${e.effectiveDirective} ${e.blockedURI}`);
    });
  });
  const consoleCsp: string[] = [];
  const onConsole = (m: { text(): string }) => {
    if (/content security policy/i.test(m.text())) consoleCsp.push(m.text());
  };
  page.on('console', onConsole);
  // Workers report violations to their own global scope, not to the page.
  const workerListeners: Promise<unknown>[] = [];
  page.on('worker', (w) => {
    workerListeners.push(
      w.evaluate(() => {
        const seen: string[] = [];
        (globalThis as { cspViolations?: string[] }).cspViolations = seen;
        globalThis.addEventListener('securitypolicyviolation', (e) => {
          seen.push(`${e.effectiveDirective} ${e.blockedURI}`);
        });
      }),
    );
  });

  await signUpViaApi(page.request, uniqueName('carol'));
  const src = randomFile(testInfo.outputPath('files'), 'csp-5MiB.bin', 5 * MiB + 3);
  await page.goto('/files');
  await page.getByTestId('upload-input').setInputFiles(src.path);
  await expect(uploadRow(page, 'csp-5MiB.bin')).toHaveAttribute('data-state', 'done', { timeout: 60_000 });
  expect((await findByName(page.request, null, 'csp-5MiB.bin')).sha1).toBe(src.sha1);

  const violations = () => (globalThis as { cspViolations?: string[] }).cspViolations;
  expect(await page.evaluate(violations)).toEqual([]);
  expect(consoleCsp).toEqual([]);
  await Promise.all(workerListeners);

  // Inside a hash worker: the policy is in force there (no eval), and still lets hash-wasm
  // compile WebAssembly — a CSP without 'wasm-unsafe-eval' would make the client core fall
  // back to its slow JS hashing without any error to see. The probe runs from a timer: code
  // that DevTools evaluates directly is exempt from the eval rules.
  const workers = page.workers().filter((w) => w.url().includes('hash.worker'));
  expect(workers.length, 'hash workers of the upload').toBeGreaterThan(0);
  for (const w of workers) expect(await w.evaluate(violations)).toEqual([]);
  const worker = workers[0]!;
  const inWorker = await worker.evaluate(
    (bytes) =>
      new Promise<{ evalBlocked: boolean; wasm: string }>((resolve) => {
        setTimeout(() => {
          let evalBlocked = false;
          try {
            new Function('return 1')();
          } catch {
            evalBlocked = true;
          }
          WebAssembly.compile(new Uint8Array(bytes)).then(
            () => resolve({ evalBlocked, wasm: 'compiled' }),
            (e: Error) => resolve({ evalBlocked, wasm: e.message }),
          );
        }, 0);
      }),
    EMPTY_WASM,
  );
  expect(inWorker).toEqual({ evalBlocked: true, wasm: 'compiled' });
  // The worker's listener does hear violations: the refused eval is there.
  expect(await worker.evaluate(violations)).toEqual(['script-src eval']);

  // frame-ancestors 'none' (and X-Frame-Options): another page cannot embed the app.
  page.off('console', onConsole);
  await page.goto('about:blank');
  await page.setContent(`<iframe id="app" src="${baseURL}/files"></iframe>`);
  // Chromium replaces a refused frame with its error page.
  await expect.poll(() => page.frames()[1]?.url()).toMatch(/^chrome-error:/);
  await expect(page.frameLocator('#app').locator('#app')).toHaveCount(0);
});
