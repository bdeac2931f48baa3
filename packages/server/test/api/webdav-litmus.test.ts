import type { AddressInfo } from 'node:net';
import { litmus } from '@dfs/cluster/clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

/**
 * Debian's litmus, the WebDAV conformance suite, on a real socket against each mount of the one
 * WebDAV implementation: /dav/ and the Nextcloud clients' files mount.
 */
describe.each(['/dav/', '/remote.php/dav/files/alice/'])('litmus against %s', (mount) => {
  let t: TestApp;
  let url: string;
  let secret: string;

  beforeAll(async () => {
    t = await startTestApp();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}${mount}`;
    const alice = await t.user('alice');
    secret = await t.appPassword(alice.headers, 'litmus');
  });
  afterAll(() => t.close());

  for (const suite of (process.env.DFS_LITMUS_SUITES ?? 'basic copymove props locks http').split(' ')) {
    it(`passes the ${suite} suite`, async () => {
      const { ok, out } = await litmus(url, 'alice', secret, suite);
      expect(out, out).toMatch(/<- summary for `\w+': of \d+ tests run: \d+ passed, 0 failed/);
      expect(ok, out).toBe(true);
    });
  }
});
