import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { random } from '../support/bytes.ts';
import { CHUNK, uploader } from '../support/uploads.ts';

/** Runs a program to its end; its output is kept for the failure message. */
function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => {
      output += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      output += b.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Share links with real download clients: download managers, resumes, grants, guess limits. */
describe('share downloads', () => {
  let t: TestApp;
  let clock = Date.now();
  let alice: Awaited<ReturnType<TestApp['user']>>;
  const data = random(4 * CHUNK + 123);
  let file: { id: string; sha1: string };

  const share = async (body: object = {}) =>
    (
      await t.app.inject({
        method: 'POST',
        url: `/api/files/${file.id}/shares`,
        headers: alice.headers,
        payload: body,
      })
    ).json().share as { token: string };
  const content = (token: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') =>
    t.app.inject({ method, url: `/api/public/shares/${token}/content`, headers });
  const downloadsOf = async (token: string) =>
    (await t.app.inject({ url: '/api/shares', headers: alice.headers }))
      .json()
      .items.find((s: { token: string }) => s.token === token).downloads as number;
  /** Splits the file into `n` ranges the way `aria2c -x n` does. */
  const ranges = (n: number) => {
    const step = Math.ceil(data.length / n);
    return Array.from({ length: n }, (_, i) => ({
      start: i * step,
      end: Math.min(data.length, (i + 1) * step) - 1,
    }));
  };

  beforeAll(async () => {
    t = await startTestApp(
      { DFS_CHUNK_SIZE: String(CHUNK), DFS_SHARE_PASSWORD_RATE_LIMIT: '3' },
      { now: () => clock },
    );
    alice = await t.user('alice');
    file = await uploader(t, alice.headers).upload(data, '报告 2026 ✓.pdf');
  });
  afterAll(() => t.close());

  it('counts a download manager’s parallel ranges as one download', async () => {
    const s = await share({ maxDownloads: 1 });
    const parts = await Promise.all(
      ranges(8).map((r) => content(s.token, { range: `bytes=${r.start}-${r.end}` })),
    );
    expect(parts.map((p) => p.statusCode)).toEqual(Array(8).fill(206));
    expect(Buffer.concat(parts.map((p) => p.rawPayload)).equals(data)).toBe(true);
    expect(await downloadsOf(s.token)).toBe(1);
    // The one copy is given out: a second whole copy is refused, and so is the link page.
    const again = await content(s.token);
    expect(again.statusCode).toBe(410);
    expect(errorCode(again)).toBe('share_expired');
    expect((await t.app.inject({ url: `/api/public/shares/${s.token}` })).statusCode).toBe(410);
  });

  it('never lets ranges fetch more copies than the limit allows', async () => {
    const s = await share({ maxDownloads: 2 });
    const half = Math.floor(data.length / 2);
    const codes: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = i % 2 === 0 ? `bytes=0-${half - 1}` : `bytes=${half}-`;
      codes.push((await content(s.token, { range: r })).statusCode);
    }
    // Two halves make a copy: four requests are the two allowed copies, then the link is spent
    // (the slack for retransmissions is below half a copy).
    expect(codes).toEqual([206, 206, 206, 206, 410, 410, 410, 410]);
    expect(await downloadsOf(s.token)).toBe(2);
  });

  it('counts every whole download when there is no limit', async () => {
    const s = await share();
    for (let i = 0; i < 3; i++) expect((await content(s.token)).statusCode).toBe(200);
    expect(await downloadsOf(s.token)).toBe(3);
    expect((await content(s.token, {}, 'HEAD')).statusCode).toBe(200);
    expect(await downloadsOf(s.token)).toBe(3);
  });

  it('never rate-limits plain downloads of a link without a password', async () => {
    const s = await share();
    const parts = await Promise.all(
      ranges(16).map((r) => content(s.token, { range: `bytes=${r.start}-${r.end}` })),
    );
    expect(new Set(parts.map((p) => p.statusCode))).toEqual(new Set([206]));
  });

  it('limits password guesses with one budget for GET, HEAD and grants, not proven passwords', async () => {
    const s = await share({ password: 'open sesame' });
    // A proven password is not a guess: a download manager's ranges with the header all pass.
    for (let i = 0; i < 6; i++) {
      expect(
        (await content(s.token, { 'x-share-password': 'open sesame', range: 'bytes=0-9' })).statusCode,
      ).toBe(206);
    }
    const wrong = { 'x-share-password': 'guess' };
    const codes = [
      (await content(s.token, wrong, 'HEAD')).statusCode,
      (await content(s.token, wrong)).statusCode,
      (
        await t.app.inject({
          method: 'POST',
          url: `/api/public/shares/${s.token}/grants`,
          headers: { 'x-share-password': 'other guess' },
        })
      ).statusCode,
      (await content(s.token, wrong, 'HEAD')).statusCode,
      (await content(s.token, { 'x-share-password': 'yet another' })).statusCode,
    ];
    // The right password counted once (its first verification): two guesses are left, then 429.
    expect(codes).toEqual([403, 403, 429, 429, 429]);
    const limited = await content(s.token, wrong);
    expect(errorCode(limited)).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('grants a short-lived URL that downloads without the password header', async () => {
    const s = await share({ password: 'grant-Xyzzy-pass' });
    const grants = (headers: Record<string, string>, token = s.token) =>
      t.app.inject({ method: 'POST', url: `/api/public/shares/${token}/grants`, headers });
    expect(errorCode(await grants({}))).toBe('share_password_required');

    const res = await grants({ 'x-share-password': 'grant-Xyzzy-pass' });
    expect(res.statusCode).toBe(201);
    const { url, expiresAt } = res.json() as { url: string; expiresAt: string };
    expect(Date.parse(expiresAt) - clock).toBe(10 * 60_000);
    const path = new URL(url, 'http://x').pathname + new URL(url, 'http://x').search;
    expect(path).not.toContain('Xyzzy');

    const whole = await t.app.inject({ url: path });
    expect(whole.statusCode).toBe(200);
    expect(whole.rawPayload.equals(data)).toBe(true);
    expect(whole.headers['content-disposition']).toMatch(/^attachment;/);
    const ranged = await t.app.inject({ url: path, headers: { range: 'bytes=5-9' } });
    expect(ranged.statusCode).toBe(206);
    expect(ranged.rawPayload.equals(data.subarray(5, 10))).toBe(true);

    // Tampered, or for another link: refused. Expired: gone.
    const tampered = path.replace(/grant=([^.]+)\.(.)/, (_m, e, c) => `grant=${e}.${c === 'A' ? 'B' : 'A'}`);
    expect((await t.app.inject({ url: tampered })).statusCode).toBe(403);
    const other = await share();
    const foreign = path.replace(s.token, other.token);
    expect((await t.app.inject({ url: foreign })).statusCode).toBe(403);
    clock += 10 * 60_000 + 1;
    const expired = await t.app.inject({ url: path });
    expect(expired.statusCode).toBe(410);
    expect(errorCode(expired)).toBe('gone');
  });

  it('reads a grant only in the exact form it was given: no extra, padded or re-encoded parts', async () => {
    const s = await share();
    const { url } = (
      await t.app.inject({ method: 'POST', url: `/api/public/shares/${s.token}/grants` })
    ).json() as { url: string };
    const grant = new URL(url).searchParams.get('grant') as string;
    const [expiry, mac] = grant.split('.') as [string, string];
    const fetchWith = (value: string) =>
      t.app.inject({
        url: `/api/public/shares/${s.token}/content?grant=${encodeURIComponent(value)}`,
        headers: { range: 'bytes=0-0' },
      });
    expect((await fetchWith(grant)).statusCode).toBe(206);
    const variants = [
      `${grant}.extra`,
      `${grant}.`,
      `${grant}=`,
      `${grant}==`,
      `${grant}x`,
      `0${expiry}.${mac}`,
      ` ${grant}`,
      `${grant} `,
      `${expiry}.${mac}\n`,
      `${expiry}xyz.${mac}`,
      `${expiry.toUpperCase()}.${mac}`,
      `${expiry}..${mac}`,
      `${expiry}.${mac.slice(0, -1)}`,
      // The last base64url character carries 2 spare bits: another letter decodes to the same MAC.
      `${expiry}.${mac.slice(0, -1)}${B64URL[B64URL.indexOf(mac.at(-1) as string) ^ 1]}`,
    ];
    for (const value of variants) {
      const res = await fetchWith(value);
      expect([value, res.statusCode]).toEqual([value, 403]);
      expect(errorCode(res)).toBe('forbidden');
    }
  });

  it('grants nothing for a revoked link, even with a live grant URL', async () => {
    const s = await share();
    const { url } = (
      await t.app.inject({ method: 'POST', url: `/api/public/shares/${s.token}/grants` })
    ).json() as { url: string };
    await t.app.inject({ method: 'DELETE', url: `/api/shares/${s.token}`, headers: alice.headers });
    expect((await t.app.inject({ url: new URL(url).pathname + new URL(url).search })).statusCode).toBe(404);
  });

  it('answers If-Range with a stale validator with the whole body, and sends Last-Modified', async () => {
    const s = await share();
    const head = await content(s.token, {}, 'HEAD');
    const lastModified = String(head.headers['last-modified']);
    expect(Date.parse(lastModified)).toBeGreaterThan(0);
    const etag = String(head.headers.etag);
    const same = await content(s.token, { range: 'bytes=0-9', 'if-range': etag });
    expect(same.statusCode).toBe(206);
    const stale = await content(s.token, { range: 'bytes=0-9', 'if-range': `"${'0'.repeat(40)}"` });
    expect(stale.statusCode).toBe(200);
    expect(stale.rawPayload.length).toBe(data.length);
    expect((await content(s.token, { range: 'bytes=0-9', 'if-range': lastModified })).statusCode).toBe(206);
    const oldDate = new Date(Date.parse(lastModified) - 3600_000).toUTCString();
    expect((await content(s.token, { range: 'bytes=0-9', 'if-range': oldDate })).statusCode).toBe(200);
  });

  it('gives curl -OJ a readable ASCII file name', async () => {
    const s = await share();
    const res = await content(s.token, {}, 'HEAD');
    const header = String(res.headers['content-disposition']);
    expect(header).toContain('filename="BaoGao 2026 v.pdf"');
    expect(header).toContain("filename*=UTF-8''");
  });
});

describe('a resumed share download', () => {
  it('counts once when a cut-off transfer is resumed with Range', async () => {
    const t = await startTestApp({ DFS_CHUNK_SIZE: String(8 * 1024 * 1024) });
    try {
      const u = await t.user('dora');
      const data = random(64 * 1024 * 1024);
      const f = await uploader(t, u.headers).upload(data, 'big.bin');
      const s = (
        await t.app.inject({
          method: 'POST',
          url: `/api/files/${f.id}/shares`,
          headers: u.headers,
          payload: { maxDownloads: 1 },
        })
      ).json().share;
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = t.app.server.address() as AddressInfo;
      const url = `http://127.0.0.1:${port}/api/public/shares/${s.token}/content`;

      // Read a little, then drop the connection, as a browser does when the network goes.
      const first = await new Promise<Buffer>((resolve, reject) => {
        const parts: Buffer[] = [];
        let got = 0;
        const req = http.get(url, (res) => {
          res.on('data', (part: Buffer) => {
            parts.push(part);
            got += part.length;
            if (got >= 1024 * 1024) {
              req.destroy();
              resolve(Buffer.concat(parts));
            }
          });
        });
        req.on('error', () => undefined);
        setTimeout(() => reject(new Error('no bytes')), 20_000).unref();
      });
      // The server notices the cut and gives back what it did not send.
      await new Promise((r) => setTimeout(r, 300));
      const rest = await fetch(url, { headers: { range: `bytes=${first.length}-` } });
      expect(rest.status).toBe(206);
      const tail = Buffer.from(await rest.arrayBuffer());
      expect(Buffer.concat([first, tail]).equals(data)).toBe(true);
      const mine = (await t.app.inject({ url: '/api/shares', headers: u.headers })).json();
      expect(mine.items[0].downloads).toBe(1);
      // The copy is delivered: a second whole one is refused.
      expect((await fetch(url)).status).toBe(410);
    } finally {
      await t.close();
    }
  }, 60_000);
});

/** aria2c, the download manager: parallel open-ended ranges that it cuts where the next one begins. */
describe('share links and a real download manager', () => {
  const MiB = 1024 * 1024;
  let t: TestApp;
  let u: Awaited<ReturnType<TestApp['user']>>;
  let data: Buffer;
  let file: { id: string; sha1: string };
  let base: string;
  let dir: string;

  beforeAll(async () => {
    t = await startTestApp({ DFS_CHUNK_SIZE: String(8 * MiB) });
    u = await t.user('erin');
    data = random(96 * MiB);
    file = await uploader(t, u.headers).upload(data, 'big.bin');
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-aria2-'));
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const share = async (maxDownloads: number) =>
    (
      await t.app.inject({
        method: 'POST',
        url: `/api/files/${file.id}/shares`,
        headers: u.headers,
        payload: { maxDownloads },
      })
    ).json().share as { token: string };
  const downloadsOf = async (token: string) =>
    (await t.app.inject({ url: '/api/shares', headers: u.headers }))
      .json()
      .items.find((s: { token: string }) => s.token === token).downloads as number;
  /** aria2c -x8 -s8 into a fresh file; resolves with its exit code and what it saved. */
  const aria2 = async (url: string, name: string) => {
    const { code } = await run('aria2c', [
      '-x8',
      '-s8',
      '--min-split-size=1M',
      '--max-tries=1',
      '--allow-overwrite=true',
      '--auto-file-renaming=false',
      '--console-log-level=warn',
      '--summary-interval=0',
      '-d',
      dir,
      '-o',
      name,
      url,
    ]);
    const saved = await readFile(path.join(dir, name)).catch(() => Buffer.alloc(0));
    return { code, saved };
  };

  it('counts one aria2c -x8 -s8 download as one of three', async () => {
    const s = await share(3);
    const url = `${base}/api/public/shares/${s.token}/content`;
    const got = await aria2(url, 'one.bin');
    expect(got.code).toBe(0);
    expect(got.saved.equals(data)).toBe(true);
    // The server hears of each cut connection a moment after aria2c has moved on.
    await new Promise((r) => setTimeout(r, 500));
    expect(await downloadsOf(s.token)).toBe(1);
  }, 120_000);

  it('answers the request after the last copy with a 410, every time', async () => {
    for (let round = 0; round < 3; round++) {
      const s = await share(2);
      const url = `${base}/api/public/shares/${s.token}/content`;
      expect((await aria2(url, `two-${round}.bin`)).saved.equals(data)).toBe(true);
      const plain = await raw(url);
      expect([plain.status, plain.complete, plain.length]).toEqual([200, true, data.length]);
      await new Promise((r) => setTimeout(r, 200));
      expect(await downloadsOf(s.token)).toBe(2);
      const requests: Record<string, string>[] = [
        {},
        { range: 'bytes=0-' },
        { range: `bytes=${data.length / 2}-` },
      ];
      for (const headers of requests) {
        const spent = await raw(url, headers);
        expect([spent.status, spent.complete]).toEqual([410, true]);
        expect(JSON.parse(spent.body.toString()).error.code).toBe('share_expired');
      }
    }
  }, 240_000);
});

/** A plain HTTP GET that reports what arrived, and whether the response was whole. */
function raw(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; complete: boolean; length: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      let length = 0;
      res.on('data', (part: Buffer) => {
        length += part.length;
        if (parts.length < 4) parts.push(part);
      });
      res.on('error', () => undefined);
      res.on('close', () =>
        resolve({ status: res.statusCode ?? 0, complete: res.complete, length, body: Buffer.concat(parts) }),
      );
    });
    req.on('error', reject);
  });
}
