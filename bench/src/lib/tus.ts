import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from '@dfs/cluster/ports';
import * as tus from 'tus-js-client';
import { onCleanup } from './cleanup.ts';

export interface RunningTus {
  endpoint: string;
  pid: number;
  directory: string;
  /** Uploads `file` with tus-js-client in this process; resolves with the stored file's path. */
  upload(file: string, chunkSize: number): Promise<string>;
  stop(): Promise<void>;
}

export async function startTus(directory: string): Promise<RunningTus> {
  await mkdir(directory, { recursive: true });
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(import.meta.dirname, '../tus-server.ts')],
    {
      env: { ...process.env, TUS_PORT: String(port), TUS_DIR: directory },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  child.stderr.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = onCleanup(`tus server :${port}`, async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(directory, { recursive: true, force: true });
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tus server did not start:\n${log}`)), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tus server exited (${code}):\n${log}`));
    });
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });

  const endpoint = `http://127.0.0.1:${port}/files`;
  return {
    endpoint,
    pid: child.pid!,
    directory,
    async upload(file, chunkSize) {
      const size = (await stat(file)).size;
      const url = await new Promise<string>((resolve, reject) => {
        const upload = new tus.Upload(createReadStream(file), {
          endpoint,
          chunkSize,
          uploadSize: size,
          retryDelays: [0, 1000, 3000, 5000],
          storeFingerprintForResuming: false,
          metadata: { filename: path.basename(file) },
          onError: reject,
          onSuccess: () => resolve(upload.url ?? ''),
        });
        upload.start();
      });
      const id = url.slice(url.lastIndexOf('/') + 1);
      const stored = path.join(directory, id);
      const names = await readdir(directory);
      if (!names.includes(id)) throw new Error(`tus: ${id} not found in ${directory} (${names.join(', ')})`);
      return stored;
    },
    stop,
  };
}

/**
 * tus-js-client → dfs's own /api/tus/, exactly as against the peer (same chunk size, a file
 * stream), authenticated with an app password as a program would; the file is named `name`.
 */
export async function tusUploadToDfs(
  appUrl: string,
  appPassword: string,
  file: string,
  chunkSize: number,
  name: string,
): Promise<void> {
  const size = (await stat(file)).size;
  await new Promise<void>((resolve, reject) => {
    const upload = new tus.Upload(createReadStream(file), {
      endpoint: `${appUrl}/api/tus/`,
      headers: { authorization: `Bearer ${appPassword}` },
      chunkSize,
      uploadSize: size,
      retryDelays: [0, 1000, 3000, 5000],
      storeFingerprintForResuming: false,
      metadata: { filename: name },
      onError: reject,
      onSuccess: () => resolve(),
    });
    upload.start();
  });
}
