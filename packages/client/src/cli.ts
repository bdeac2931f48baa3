/**
 * dfs — command-line client.
 *
 *   dfs login <server> <username>      password from $DFS_PASSWORD or a prompt; with two-factor
 *                                      sign-in on, the code from --code, $DFS_TOTP or a prompt
 *   dfs logout
 *   dfs whoami
 *   dfs ls [folderId] [--json]
 *   dfs upload <path...> [--parent <folderId>] [--id] [--parallel <n>]
 *   dfs download <fileId> [out] [--force]
 *
 * The server and token come from the config file (see `configPath()`), or $DFS_SERVER/$DFS_TOKEN.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { type FileEntry, nameProblem } from '@dfs/shared';
import { DfsApi } from './api.ts';
import { ApiError } from './errors.ts';
import { clearConfig, configPath, loadConfig, saveConfig } from './node/config.ts';
import { nodeFetch } from './node/fetch.ts';
import { fileSourceFromPath } from './node/source.ts';
import { nodeUploadOptions } from './node/upload-options.ts';
import { FolderIndex } from './upload/existing.ts';
import { UploadQueue } from './upload/queue.ts';
import type { UploadSnapshot } from './upload/upload.ts';
import { formatBytes } from './util/bytes.ts';

const USAGE = `usage:
  dfs login <server> <username> [--code <code>]
                                    (password: $DFS_PASSWORD or prompt; two-factor code:
                                    --code, $DFS_TOTP or prompt)
  dfs logout
  dfs whoami
  dfs ls [folderId] [--json]
  dfs upload <path...> [--parent <folderId>] [--id] [--parallel <n>]
  dfs download <fileId> [out] [--force]
config: ${configPath()} (override with $DFS_CLIENT_CONFIG; $DFS_SERVER / $DFS_TOKEN win over it)`;

class UsageError extends Error {}

const err = process.stderr;
const isTty = Boolean(err.isTTY);

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      parent: { type: 'string', short: 'p' },
      json: { type: 'boolean' },
      id: { type: 'boolean' },
      parallel: { type: 'string' },
      force: { type: 'boolean', short: 'f' },
      code: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...args] = positionals;
  if (values.help || !command || command === 'help') {
    (command ? process.stdout : err).write(`${USAGE}\n`);
    return command || values.help ? 0 : 2;
  }
  switch (command) {
    case 'login':
      return login(args, values.code ?? process.env.DFS_TOTP);
    case 'logout':
      return logout();
    case 'whoami': {
      const api = await authedApi();
      const { user } = await api.me();
      process.stdout.write(`${user.username}${user.isAdmin ? ' (admin)' : ''} on ${api.baseUrl}\n`);
      return 0;
    }
    case 'ls':
      return ls(args, Boolean(values.json));
    case 'upload': {
      const parallel = values.parallel === undefined ? 4 : Number(values.parallel);
      if (!Number.isInteger(parallel) || parallel < 1)
        throw new UsageError('--parallel takes a positive integer');
      return upload(args, values.parent ?? null, Boolean(values.id), parallel);
    }
    case 'download':
      return download(args, Boolean(values.force));
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

async function authedApi(): Promise<DfsApi> {
  const cfg = await loadConfig();
  const server = process.env.DFS_SERVER || cfg?.server;
  const token = process.env.DFS_TOKEN || cfg?.token;
  if (!server || !token) throw new Error('not logged in: run `dfs login <server> <username>` first');
  return new DfsApi({ baseUrl: server, token, credentials: 'omit', fetch: nodeFetch });
}

/**
 * Signs in and keeps the session token. With two-factor sign-in on, the server answers
 * `totp_required` to the password alone; the code (a current one from the authenticator app, or a
 * recovery code) is then asked for and the sign-in sent again. Scripts give it up front
 * (`--code`, $DFS_TOTP), or as the next line of a piped stdin.
 */
async function login(args: string[], givenCode: string | undefined): Promise<number> {
  const [server, username] = args;
  if (!server || !username || args.length > 2) throw new UsageError('login takes <server> <username>');
  if (!/^https?:\/\//.test(server)) throw new UsageError(`server must be an http(s) URL, got "${server}"`);
  try {
    const password = process.env.DFS_PASSWORD ?? (await promptPassword(`password for ${username}: `));
    const api = new DfsApi({ baseUrl: server, credentials: 'omit', fetch: nodeFetch });
    const code = givenCode?.trim() || undefined;
    let signedIn: Awaited<ReturnType<DfsApi['signin']>>;
    try {
      signedIn = await api.signin(username, password, code === undefined ? {} : { code });
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 'totp_required') || code !== undefined) throw e;
      const asked = (await promptCode(`two-factor code for ${username} (or a recovery code): `)).trim();
      if (!asked) {
        throw new Error('two-factor sign-in is on for this account: give the code with --code or $DFS_TOTP');
      }
      signedIn = await api.signin(username, password, { code: asked });
    }
    const { user, token } = signedIn;
    await saveConfig({ server: api.baseUrl, token, username: user.username });
    err.write(`logged in as ${user.username} on ${api.baseUrl}\n`);
    return 0;
  } finally {
    // A piped stdin read line by line must not keep the process waiting for more.
    stdinLines?.close();
  }
}

async function logout(): Promise<number> {
  const cfg = await loadConfig();
  if (cfg) {
    const api = new DfsApi({ baseUrl: cfg.server, token: cfg.token, credentials: 'omit', fetch: nodeFetch });
    await api.signout().catch((e: unknown) => err.write(`warning: server sign-out failed: ${describe(e)}\n`));
  }
  await clearConfig();
  err.write('logged out\n');
  return 0;
}

async function ls(args: string[], json: boolean): Promise<number> {
  if (args.length > 1) throw new UsageError('ls takes at most one folder id');
  const api = await authedApi();
  const folderId = args[0];
  // The server answers a page at a time; `ls` shows the whole folder.
  const list = await api.listAllFiles({
    ...(folderId ? { parentId: folderId } : {}),
    sort: 'name',
    order: 'asc',
  });
  if (json) {
    process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    return 0;
  }
  for (const f of list.items) {
    const size = f.kind === 'folder' ? '-' : formatBytes(f.size);
    process.stdout.write(
      `${f.id}\t${f.kind === 'folder' ? 'dir ' : 'file'}\t${size.padStart(10)}\t${f.updatedAt}\t${f.name}\n`,
    );
  }
  if (list.total > list.items.length) err.write(`(${list.items.length} of ${list.total} shown)\n`);
  return 0;
}

function describeState(s: UploadSnapshot): string {
  const pct = (n: number) => `${s.size ? Math.floor((100 * n) / s.size) : 100}%`;
  const eta = s.eta !== null && s.eta > 0 ? ` ETA ${Math.ceil(s.eta)}s` : '';
  const speed = s.speed > 0 ? ` ${formatBytes(Math.round(s.speed))}/s` : '';
  switch (s.state) {
    case 'hashing':
      return `hashing ${pct(s.bytesHashed)}${speed}${eta}`;
    case 'uploading':
      return `uploading ${pct(s.bytesUploaded)}${speed}${eta}`;
    default:
      return s.state;
  }
}

async function upload(paths: string[], parentId: string | null, idOnly: boolean, parallel: number) {
  if (paths.length === 0) throw new UsageError('upload takes one or more paths');
  const api = await authedApi();
  const sources = [];
  for (const p of paths) sources.push(await fileSourceFromPath(p));
  const queue = new UploadQueue({
    transport: api,
    ...nodeUploadOptions,
    parallelism: parallel,
    requestConcurrency: parallel * 2,
    concurrency: 2,
  });
  // Sending the same files again (after an interrupted run, say) skips those the folder already
  // has with the same name and content instead of storing ` (1)` copies beside them.
  const existing = new FolderIndex(
    async (id) => (await api.listAllFiles(id === null ? {} : { parentId: id })).items,
  );
  const uploads = sources.map((s) => queue.add(s, { parentId, skipIdentical: existing }));
  const total = uploads.length;
  let failed = 0;

  let lastLine = 0;
  const render = (force = false) => {
    const now = Date.now();
    if (!force && now - lastLine < (isTty ? 200 : 5000)) return;
    lastLine = now;
    const t = queue.totals();
    const active = uploads.filter((u) => u.state !== 'queued' && u.state !== 'done' && u.state !== 'error');
    const parts = active.map((u) => `${u.name}: ${describeState(u.snapshot())}`);
    const eta = t.eta !== null && t.eta > 0 ? ` ETA ${Math.ceil(t.eta)}s` : '';
    const line = `[${t.done + t.failed}/${total}] ${formatBytes(t.bytesUploaded)} / ${formatBytes(t.bytesTotal)}${eta}  ${parts.join('  ')}`;
    if (isTty) err.write(`\r\x1b[2K${line.slice(0, (err.columns || 120) - 1)}`);
    else err.write(`${line}\n`);
  };
  const clearLine = () => {
    if (isTty) err.write('\r\x1b[2K');
  };
  queue.on('progress', () => render());
  queue.on('state', () => render());
  for (const u of uploads) {
    u.on('retry', (info) => {
      clearLine();
      err.write(
        `${u.name}: ${info.operation} failed (${info.error.message}); retrying in ${info.delayMs} ms\n`,
      );
    });
  }
  queue.on('done', (file: FileEntry, snap) => {
    clearLine();
    const how = snap.skipped
      ? 'skipped: the folder already has it'
      : snap.instant
        ? 'instant (already stored)'
        : `${formatBytes(snap.sentBytes)} sent`;
    err.write(`done: ${snap.name} → ${file.id} (${how})\n`);
    process.stdout.write(idOnly ? `${file.id}\n` : `${JSON.stringify(file)}\n`);
  });
  queue.on('error', (e, snap) => {
    failed++;
    clearLine();
    err.write(`failed: ${snap.name}: ${describe(e)}\n`);
  });

  const onSigint = () => {
    clearLine();
    err.write('interrupted: canceling uploads\n');
    void queue.cancelAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSigint);
  await queue.idle();
  process.off('SIGINT', onSigint);
  clearLine();
  return failed > 0 ? 1 : 0;
}

async function download(args: string[], force: boolean): Promise<number> {
  const [fileId, outArg] = args;
  if (!fileId || args.length > 2) throw new UsageError('download takes <fileId> [out]');
  const api = await authedApi();
  const { file } = await api.getFile(fileId);
  if (file.kind !== 'file') throw new Error(`${file.name} is a folder`);
  let out = outArg ?? file.name;
  const st = await stat(out).catch(() => null);
  if (st?.isDirectory()) out = join(out, file.name);
  if (!force && (await stat(out).catch(() => null)))
    throw new Error(`${out} exists (use --force to overwrite)`);
  // The shared name rule also makes a name safe as one path component; a server that broke it must
  // not make us write outside the current directory.
  if (outArg === undefined && nameProblem(file.name) !== null) {
    throw new Error('the file name is unsafe as a path; give an output path');
  }
  const res = await api.download(fileId);
  if (!res.body) throw new Error('empty response');
  const size = Number(res.headers.get('content-length') ?? file.size);
  const sha1 = createHash('sha1');
  let received = 0;
  let last = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sha1.update(chunk);
      received += chunk.length;
      const now = Date.now();
      if (now - last > (isTty ? 200 : 5000)) {
        last = now;
        const line = `${file.name}: ${formatBytes(received)} / ${formatBytes(size)}`;
        err.write(isTty ? `\r\x1b[2K${line}` : `${line}\n`);
      }
      cb(null, chunk);
    },
  });
  const part = `${out}.part`;
  try {
    await pipeline(
      Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
      meter,
      createWriteStream(part),
    );
  } catch (e) {
    await rm(part, { force: true });
    throw e;
  }
  if (isTty) err.write('\r\x1b[2K');
  const got = sha1.digest('hex');
  if (file.sha1 && got !== file.sha1) {
    await rm(part, { force: true });
    throw new Error(`downloaded content has SHA-1 ${got}, expected ${file.sha1}`);
  }
  await rename(part, out);
  err.write(`saved ${out} (${formatBytes(received)})\n`);
  return 0;
}

/** Piped stdin, one line per question (the password, then the code), read as asked. */
let stdinLines: Interface | null = null;
let stdinIterator: AsyncIterator<string> | null = null;

/** The next line of a piped stdin; '' once it has ended. */
async function nextStdinLine(): Promise<string> {
  if (!stdinIterator) {
    stdinLines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
    stdinIterator = stdinLines[Symbol.asyncIterator]();
  }
  const next = await stdinIterator.next();
  return next.done ? '' : next.value;
}

/** A one-time code: as the password is asked for, but shown as typed (it is worthless once used). */
function promptCode(prompt: string): Promise<string> {
  return promptPassword(prompt, true);
}

async function promptPassword(prompt: string, echo = false): Promise<string> {
  const stdin = process.stdin;
  err.write(prompt);
  if (!stdin.isTTY) return nextStdinLine();
  return new Promise((resolve, reject) => {
    let value = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const onData = (s: string) => {
      for (const ch of s) {
        if (ch === '\r' || ch === '\n') {
          done();
          err.write('\n');
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          done();
          err.write('\n');
          reject(new UsageError('canceled'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') {
          if (echo && value) err.write('\b \b');
          value = value.slice(0, -1);
        } else {
          value += ch;
          if (echo) err.write(ch);
        }
      }
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
    };
    stdin.on('data', onData);
  });
}

function describe(e: unknown): string {
  if (e instanceof ApiError) return `${e.message} (${e.code}, HTTP ${e.status})`;
  if (e instanceof Error) return e.message;
  return String(e);
}

// `pnpm dfs …` runs from the workspace root; pnpm keeps the caller's directory in INIT_CWD, and
// paths on the command line mean what they mean there.
if (process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError || (e as { code?: string })?.code?.startsWith?.('ERR_PARSE_ARGS')) {
      err.write(`dfs: ${(e as Error).message}\n${USAGE}\n`);
      process.exitCode = 2;
      return;
    }
    err.write(`dfs: ${describe(e)}\n`);
    process.exitCode = 1;
  },
);
