import { execFileSync } from 'node:child_process';
import { chown, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
// The test suite's real-sshd harness (plain TypeScript, no vitest): the bench uses the same sshd.
import { type SshdHandle, startSshd } from '@dfs/cluster/sshd';
import { onCleanup } from './cleanup.ts';
import { type RunResult, run } from './util.ts';

export interface BenchSshd {
  handle: SshdHandle;
  /** uid of the SFTP user: its processes are the SFTP sessions (CPU accounting). */
  uid: number;
  /** A directory under the SFTP root that the SFTP user owns. */
  dir(name: string): Promise<string>;
  /** OpenSSH `sftp -b` with key auth; the commands run in order, any failure fails the run. */
  sftp(commands: string[]): Promise<RunResult>;
  stop(): Promise<void>;
}

/** OpenSSH `sftp -b batchFile` with key auth against one server; any failed command fails it. */
export function sftpBatch(
  to: { keyFile: string; port: number; user: string; host?: string },
  batchFile: string,
): Promise<RunResult> {
  return run('sftp', [
    '-q',
    '-i',
    to.keyFile,
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'LogLevel=ERROR',
    '-P',
    String(to.port),
    '-b',
    batchFile,
    `${to.user}@${to.host ?? '127.0.0.1'}`,
  ]);
}

export async function startBenchSshd(tmp: string): Promise<BenchSshd> {
  const handle = await startSshd();
  const stop = onCleanup('sshd', () => handle.stop());
  const uid = Number(execFileSync('id', ['-u', handle.username]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', handle.username]).toString().trim());
  const batch = path.join(tmp, 'sftp-batch');
  return {
    handle,
    uid,
    async dir(name) {
      const dir = path.join(handle.root, name);
      await mkdir(dir, { recursive: true });
      await chown(dir, uid, gid);
      return dir;
    },
    async sftp(commands) {
      await writeFile(batch, `${commands.join('\n')}\n`);
      return sftpBatch(
        { keyFile: handle.privateKeyPath, port: handle.port, user: handle.username, host: handle.host },
        batch,
      );
    },
    stop,
  };
}
