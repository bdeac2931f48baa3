import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, CLI_PACKAGE_ROOT } from '../../../client/scripts/build-cli.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

const PASSWORD = 'correct horse battery';

const codeAt = (secret: string, at: number) =>
  new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({
    timestamp: at,
  });

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `dfs login` (the shipped bundle, run by node) against a user with two-factor sign-in on. */
describe('dfs login with two-factor sign-in', () => {
  let t: TestApp;
  let baseUrl: string;
  let dir: string;
  let cli: string;
  let secret: string;
  let recoveryCodes: string[];

  beforeAll(async () => {
    t = await startTestApp();
    baseUrl = await t.app.listen({ port: 0, host: '127.0.0.1' });
    dir = await mkdtemp(path.join(os.tmpdir(), 'dfs-cli-login-'));
    cli = path.join(CLI_PACKAGE_ROOT, 'dist', `test-${randomUUID()}`, 'cli.js');
    await buildCli(cli);
    const kim = await t.user('kim');
    const made = await t.app.inject({
      method: 'POST',
      url: '/api/auth/totp',
      headers: kim.headers,
      payload: { password: PASSWORD },
    });
    ({ secret, recoveryCodes } = made.json() as { secret: string; recoveryCodes: string[] });
    const confirmed = await t.app.inject({
      method: 'POST',
      url: '/api/auth/totp/confirm',
      headers: kim.headers,
      payload: { code: codeAt(secret, Date.now()) },
    });
    expect(confirmed.statusCode).toBe(204);
  });
  afterAll(async () => {
    await rm(path.dirname(cli), { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
    await t.close();
  });

  /** Runs a command with `input` on its stdin (then closed), in a config of its own. */
  const run = (command: string, args: string[], env: Record<string, string>, input = '') =>
    new Promise<Ran>((resolve, reject) => {
      const child = spawn(command, args, {
        env: { ...process.env, DFS_CLIENT_CONFIG: path.join(dir, 'config.json'), ...env },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => {
        stdout += d;
      });
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(input);
    });
  const login = (env: Record<string, string>, extra: string[] = [], input = '') =>
    run(process.execPath, [cli, 'login', baseUrl, 'kim', ...extra], env, input);
  const savedToken = async () =>
    (JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as { token: string }).token;
  const signedInAs = async () => {
    const res = await t.app.inject({
      url: '/api/auth/me',
      headers: { authorization: `Bearer ${await savedToken()}` },
    });
    return res.statusCode === 200 ? (res.json() as { user: { username: string } }).user.username : null;
  };

  it('takes the code from --code, or from $DFS_TOTP', async () => {
    // The next step's code: the one the confirmation used cannot be used again.
    const byFlag = await login({ DFS_PASSWORD: PASSWORD }, ['--code', codeAt(secret, Date.now() + 30_000)]);
    expect(byFlag.stderr).toContain('logged in as kim');
    expect(byFlag.code).toBe(0);
    expect(await signedInAs()).toBe('kim');

    const byEnv = await login({ DFS_PASSWORD: PASSWORD, DFS_TOTP: recoveryCodes[0] as string });
    expect(byEnv.code).toBe(0);
    expect(await signedInAs()).toBe('kim');
  });

  it('asks for the code when the server wants one: the next line of a piped stdin', async () => {
    const res = await login({}, [], `${PASSWORD}\n${recoveryCodes[1]}\n`);
    expect(res.stderr).toContain('two-factor code for kim');
    expect(res.code).toBe(0);
    expect(await signedInAs()).toBe('kim');
  });

  it('asks for it on a terminal', async () => {
    // `script` gives the CLI a pseudo-terminal; what is written to it is typed there.
    const command = [process.execPath, cli, 'login', baseUrl, 'kim'].map((a) => `'${a}'`).join(' ');
    const res = await run(
      'script',
      ['-qec', command, '/dev/null'],
      { DFS_PASSWORD: PASSWORD },
      `${recoveryCodes[2]}\r`,
    );
    expect(res.stdout).toContain('two-factor code for kim');
    expect(res.stdout).toContain('logged in as kim');
    expect(res.code).toBe(0);
  });

  it('fails clearly without a code, or with a wrong one, and keeps no session', async () => {
    await rm(path.join(dir, 'config.json'), { force: true });
    const none = await login({ DFS_PASSWORD: PASSWORD });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('give the code with --code or $DFS_TOTP');

    const wrong = await login({ DFS_PASSWORD: PASSWORD }, ['--code', 'aaaaa-bbbbb']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('totp_invalid');
    await expect(readFile(path.join(dir, 'config.json'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
