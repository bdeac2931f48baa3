import { execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const README = path.resolve(import.meta.dirname, '../../../README.md');

/**
 * Debian's litmus, the WebDAV conformance suite, against `url` (ending in /dav/). Answers its
 * output and whether it passed (litmus exits non-zero on a failed test).
 */
export async function litmus(
  url: string,
  user: string,
  pass: string,
  suites: string,
): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout } = await run('litmus', [url, user, pass], {
      env: { ...process.env, TESTS: suites },
      timeout: 180_000,
    });
    return { ok: true, out: stdout };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** The README's `rclone config create dfs …` line, as a user copies it. */
export async function readmeRcloneLine(): Promise<string> {
  const line = (await readFile(README, 'utf8'))
    .split('\n')
    .find((text) => text.startsWith('rclone config create dfs '));
  if (!line) throw new Error('README.md has no `rclone config create dfs` line');
  return line.replace(/\s+#.*$/, '');
}

/**
 * Creates the remote `dfs` the README's way: its line run by a shell with $APP_PASSWORD set, into
 * a config file of its own. Answers the environment for later rclone commands, which points the
 * remote at `davUrl` (the README's says localhost:8080) and changes nothing else.
 */
export async function readmeRcloneRemote(
  configDir: string,
  davUrl: string,
  appPassword: string,
): Promise<NodeJS.ProcessEnv> {
  const config = path.join(configDir, 'rclone.conf');
  await writeFile(config, '');
  const env = { ...process.env, RCLONE_CONFIG: config, APP_PASSWORD: appPassword };
  await run('bash', ['-c', await readmeRcloneLine()], { env });
  // rclone reads RCLONE_CONFIG_<REMOTE>_<OPTION> before the config file.
  return { ...env, RCLONE_CONFIG_DFS_URL: davUrl };
}

/** Runs rclone with `env`; answers its output, or throws with it. */
export async function rclone(
  env: NodeJS.ProcessEnv,
  ...args: string[]
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run('rclone', args, { env, maxBuffer: 16 << 20, timeout: 600_000 });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`rclone ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

/**
 * tus-js-client, the reference tus client, as a user's program runs it: `data` in PATCHes of
 * 700 KiB (not a multiple of any chunk size), stopped after two of them, then resumed from the
 * upload URL the server gave. Answers that URL and the offsets the resumed run went on from.
 */
export async function tusUploadResumed(
  endpoint: string,
  appPassword: string,
  data: Buffer,
  filename: string,
): Promise<{ url: string; offsets: number[] }> {
  const { Upload } = await import('tus-js-client');
  const options = {
    endpoint,
    headers: { authorization: `Bearer ${appPassword}` },
    metadata: { filename },
    chunkSize: 700 * 1024,
    retryDelays: [],
  };
  const url = await new Promise<string>((resolve, reject) => {
    let chunks = 0;
    const upload = new Upload(data, {
      ...options,
      onChunkComplete: () => {
        if (++chunks === 2) void upload.abort().then(() => resolve(upload.url ?? ''), reject);
      },
      onError: reject,
      onSuccess: () => reject(new Error('the upload should have been interrupted')),
    });
    upload.start();
  });
  const offsets: number[] = [];
  await new Promise<void>((resolve, reject) => {
    new Upload(data, {
      ...options,
      uploadUrl: url,
      onChunkComplete: (_size, accepted) => offsets.push(accepted),
      onError: reject,
      onSuccess: () => resolve(),
    }).start();
  });
  return { url, offsets };
}

/**
 * One run of Debian's `nextcloudcmd` (the desktop client's sync engine), non-interactive, with a
 * HOME of its own. Answers its exit code and what it printed.
 */
export function nextcloudcmd(options: {
  dir: string;
  url: string;
  user: string;
  password: string;
  home: string;
  timeoutMs?: number;
}): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'nextcloudcmd',
      [
        '--non-interactive',
        '--max-sync-retries',
        '1',
        '-u',
        options.user,
        '-p',
        options.password,
        options.dir,
        options.url,
      ],
      { env: { ...process.env, HOME: options.home, LANG: 'C.UTF-8' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    const keep = (data: Buffer) => {
      // The client is chatty: the last part says why a run failed.
      output = (output + data.toString()).slice(-200_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 600_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, output });
    });
  });
}
