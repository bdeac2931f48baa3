import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    t = await startTestApp({ DFS_CHUNK_SIZE: String(CHUNK) }, { web: root });
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
    // Hashed asset names never change under one URL; the shell must be asked for each time.
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(start.headers['cache-control']).toBe('no-cache');
    expect(share.headers['cache-control']).toBe('no-cache');
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

describe('the web app never answers for a path the server owns', () => {
  let t: TestApp;
  let root: string;
  const html = '<!doctype html><title>dfs shell</title><div id="app"></div>';

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'dfs-web-'));
    await writeFile(path.join(root, 'index.html'), html);
    t = await startTestApp({}, { web: root });
  });
  afterAll(async () => {
    await t?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('serves a WebDAV GET of a name without a dot as the file, not the shell', async () => {
    const alice = await t.user('dotless');
    const secret = await t.appPassword(alice.headers, 'dav');
    const basic = { authorization: `Basic ${Buffer.from(`dotless:${secret}`).toString('base64')}` };
    const data = Buffer.from('all:\n\techo built\n');
    for (const name of ['Makefile', 'README', 'Ünïcode name']) {
      const url = `/dav/${encodeURIComponent(name)}`;
      const put = await t.app.inject({ method: 'PUT', url, headers: basic, payload: data });
      expect(put.statusCode, name).toBe(201);
      for (const method of ['GET', 'HEAD'] as const) {
        const got = await t.app.inject({ method, url, headers: basic });
        expect(got.statusCode, `${method} ${name}`).toBe(200);
        expect(got.headers['content-length']).toBe(String(data.length));
        if (method === 'GET') expect(got.rawPayload.equals(data), name).toBe(true);
      }
    }
    // A missing dotless name is WebDAV's 404, and without credentials WebDAV's 401.
    const missing = await t.app.inject({ url: '/dav/NoSuchFile', headers: basic });
    expect(missing.statusCode).toBe(404);
    expect(missing.body).not.toContain('<div id="app">');
    expect((await t.app.inject({ url: '/dav/Makefile' })).statusCode).toBe(401);
  });

  it('answers JSON 404s for unknown server paths and the shell only for client routes', async () => {
    for (const url of [
      '/api/nope',
      '/api',
      '/dav',
      '/remote.php/dav/files/x/y',
      '/ocs/v2.php/cloud/user',
      '/assets/gone-123.js',
    ]) {
      const res = await t.app.inject({ url });
      expect(res.body, url).not.toContain('<div id="app">');
      expect(res.statusCode, url).toBeGreaterThanOrEqual(400);
    }
    for (const url of ['/files', '/files/abc', '/s/Tok3n', '/settings/app-passwords', '/trash?x=1']) {
      const res = await t.app.inject({ url });
      expect(res.statusCode, url).toBe(200);
      expect(res.body, url).toBe(html);
    }
    const head = await t.app.inject({ method: 'HEAD', url: '/files/abc' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-type']).toMatch(/^text\/html/);
    // Writes to a client route are not the web app's business.
    expect((await t.app.inject({ method: 'POST', url: '/files/abc' })).statusCode).toBe(404);
  });
});
