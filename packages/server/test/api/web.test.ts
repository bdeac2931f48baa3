import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerWeb } from '../../src/plugins/web.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

/** The directives of a Content-Security-Policy header, by name. */
function directives(res: LightMyRequestResponse): Map<string, string[]> {
  const header = String(res.headers['content-security-policy'] ?? '');
  const out = new Map<string, string[]>();
  for (const part of header.split(';')) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) out.set(name, values);
  }
  return out;
}

function expectSpaHeaders(res: LightMyRequestResponse): void {
  expect(res.statusCode).toBe(200);
  const csp = directives(res);
  expect(csp.get('default-src')).toEqual(["'self'"]);
  // WebAssembly for the hash workers, but neither inline scripts nor eval.
  expect(csp.get('script-src')).toEqual(["'self'", "'wasm-unsafe-eval'"]);
  expect(csp.get('worker-src')).toEqual(["'self'"]);
  expect(csp.get('style-src')).toEqual(["'self'", "'unsafe-inline'"]);
  expect(csp.get('img-src')).toEqual(["'self'", 'data:', 'blob:']);
  expect(csp.get('connect-src')).toEqual(["'self'"]);
  expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
  expect(csp.get('base-uri')).toEqual(["'self'"]);
  expect(csp.get('form-action')).toEqual(["'self'"]);
  expect(csp.get('object-src')).toEqual(["'none'"]);
  expect(res.headers['x-frame-options']).toBe('DENY');
  expect(res.headers['x-content-type-options']).toBe('nosniff');
  expect(res.headers['referrer-policy']).toBe('no-referrer');
}

describe('the web app is served with a strict policy', () => {
  let t: TestApp;
  let root: string;
  const html = '<!doctype html><title>dfs test</title><div id="app"></div>';

  beforeAll(async () => {
    // A stand-in for the Vite build, so the suite needs no web build.
    root = await mkdtemp(path.join(os.tmpdir(), 'dfs-web-'));
    await mkdir(path.join(root, 'assets'));
    await writeFile(path.join(root, 'index.html'), html);
    await writeFile(path.join(root, 'assets', 'index-abc123.js'), 'console.log("app");\n');
    await writeFile(path.join(root, 'assets', 'hash.worker-abc123.js'), 'self.onmessage = () => {};\n');
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) });
    await registerWeb(t.app, root);
  });
  afterAll(async () => {
    await t?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('on the start page, on a client route like /s/:token and on assets', async () => {
    const start = await t.app.inject({ url: '/' });
    expectSpaHeaders(start);
    expect(start.body).toBe(html);
    expect(start.headers['content-type']).toMatch(/^text\/html/);

    const share = await t.app.inject({ url: '/s/abcDEF123' });
    expectSpaHeaders(share);
    expect(share.body).toBe(html);

    const asset = await t.app.inject({ url: '/assets/index-abc123.js' });
    expectSpaHeaders(asset);
    expect(asset.headers['content-type']).toMatch(/javascript/);
    // A worker's policy comes from its own response, so the hash worker needs it too.
    expectSpaHeaders(await t.app.inject({ url: '/assets/hash.worker-abc123.js' }));
  });

  it('leaves API answers and downloads with their own headers', async () => {
    const alice = await t.user('webalice');
    const me = await t.app.inject({ url: '/api/auth/me', headers: alice.headers });
    expect(me.statusCode).toBe(200);
    expect(me.headers['content-security-policy']).toBeUndefined();
    expect(me.headers['x-frame-options']).toBeUndefined();

    const data = random(CHUNK + 7);
    const file = await uploader(t, alice.headers).upload(data, 'page.html');
    const body = await t.app.inject({ url: `/api/files/${file.id}/content`, headers: alice.headers });
    expect(body.statusCode).toBe(200);
    expect(body.rawPayload.equals(data)).toBe(true);
    // The sandbox policy of downloads, not the SPA's.
    expect(body.headers['content-security-policy']).toBe("default-src 'none'; sandbox");
    expect(body.headers['x-frame-options']).toBeUndefined();
  });
});
